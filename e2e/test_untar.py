"""The runtime archive is unpacked by widget/engine/untar.mjs (JavaScript,
not Pyodide's unpackArchive, which imports Python's tarfile and shutil at
every start): exactly the files Python's tarfile reads, and nothing from a
damaged or hostile archive."""

from __future__ import annotations

import io
import json
import tarfile

UNTAR = """async ([origin, bytes]) => {
  const { untarInto } = await import(origin + '/untar.mjs');
  const files = {};
  const dirs = [];
  const FS = { mkdirTree: (p) => dirs.push(p), writeFile: (p, d) => { files[p] = Array.from(d); } };
  try {
    const count = untarInto(FS, new Uint8Array(bytes), '/proactive');
    return { count, files, dirs };
  } catch (err) {
    return { error: String(err.message) };
  }
}"""


def _untar(page, site, data: bytes) -> dict:
    return page.evaluate(UNTAR, [site.widget_origin, list(data)])


def _tar(entries, fmt=tarfile.USTAR_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def test_the_runtime_archive_unpacks_to_exactly_what_tarfile_reads(site, page):
    manifest = json.loads((site.static / "manifest.json").read_text())
    data = (site.static / manifest["runtime_archive"]).read_bytes()
    page.goto(site.page(tag=""))
    out = _untar(page, site, data)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        expected = {f"/proactive/{m.name}": list(tar.extractfile(m).read()) for m in tar.getmembers() if m.isfile()}
    assert out.get("files") == expected
    assert out["count"] == len(expected) > 10


def test_long_names_empty_files_and_folders(site, page):
    long_name = "widget/" + "a" * 60 + "/" + "b" * 80 + ".py"   # > 100 bytes: ustar's prefix field
    folder = tarfile.TarInfo("widget/empty")
    folder.type = tarfile.DIRTYPE
    data = _tar([_file(long_name, b"x = 1\n"), _file("widget/zero.py", b""), (folder, None)])
    page.goto(site.page(tag=""))
    out = _untar(page, site, data)
    assert out["files"] == {f"/proactive/{long_name}": list(b"x = 1\n"), "/proactive/widget/zero.py": []}
    assert "/proactive/widget/empty" in out["dirs"]


def test_damaged_or_hostile_archives_are_refused(site, page):
    page.goto(site.page(tag=""))
    good = _tar([_file("widget/a.py", b"a = 1\n")])
    flipped = bytearray(good)
    flipped[10] ^= 0x01                       # a byte of the name: the checksum no longer holds
    assert "damaged header" in _untar(page, site, bytes(flipped))["error"]
    truncated = good[:512 + 2]                # the header promises more bytes than there are
    assert "damaged header" in _untar(page, site, truncated)["error"]
    assert "refused path" in _untar(page, site, _tar([_file("../evil.py", b"x")]))["error"]
    assert "refused path" in _untar(page, site, _tar([_file("widget/../../evil.py", b"x")]))["error"]
    link = tarfile.TarInfo("widget/link")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    assert "unsupported entry type" in _untar(page, site, _tar([(link, None)]))["error"]
