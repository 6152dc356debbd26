// The widget's own words, in the visitor's browser language (en, de, fr, es;
// English otherwise). Message content has its own per-language variants.
const LABELS = {
  en: { title: "Chat with us", team: "Team", messages: "Messages from the team", open: "Open chat", close: "Close chat",
    unread: (n) => `Open chat (${n} new message${n > 1 ? "s" : ""})`, messageFrom: (name) => `Message from ${name}`,
    message: "Message", dismiss: "Dismiss message", replyPlaceholder: "Write a reply…", replyLabel: "Reply to this message",
    chat: "Chat", conversation: "Conversation", writePlaceholder: "Write a message…", writeLabel: "Write a message",
    send: "Send", rateLabel: "Rate this conversation", rateAsk: "How did we do?", great: "Great", average: "Okay", poor: "Poor", thanks: "Thank you for your feedback!",
    online: "We're online", offline: "We'll get back to you soon", notDelivered: "Not delivered — please try again later.",
    newMessage: "New message ↓" },
  de: { title: "Chatte mit uns", team: "Team", messages: "Nachrichten vom Team", open: "Chat öffnen", close: "Chat schließen",
    unread: (n) => `Chat öffnen (${n} neue Nachricht${n > 1 ? "en" : ""})`, messageFrom: (name) => `Nachricht von ${name}`,
    message: "Nachricht", dismiss: "Nachricht schließen", replyPlaceholder: "Antwort schreiben…", replyLabel: "Auf diese Nachricht antworten",
    chat: "Chat", conversation: "Unterhaltung", writePlaceholder: "Nachricht schreiben…", writeLabel: "Nachricht schreiben",
    send: "Senden", rateLabel: "Unterhaltung bewerten", rateAsk: "Wie war unser Service?", great: "Super", average: "Okay", poor: "Schlecht", thanks: "Danke für Ihr Feedback!",
    online: "Wir sind online", offline: "Wir melden uns bald", notDelivered: "Nicht zugestellt – bitte später erneut versuchen.",
    newMessage: "Neue Nachricht ↓" },
  fr: { title: "Discutez avec nous", team: "Équipe", messages: "Messages de l'équipe", open: "Ouvrir le chat", close: "Fermer le chat",
    unread: (n) => `Ouvrir le chat (${n} nouveau${n > 1 ? "x" : ""} message${n > 1 ? "s" : ""})`, messageFrom: (name) => `Message de ${name}`,
    message: "Message", dismiss: "Fermer le message", replyPlaceholder: "Écrire une réponse…", replyLabel: "Répondre à ce message",
    chat: "Chat", conversation: "Conversation", writePlaceholder: "Écrire un message…", writeLabel: "Écrire un message",
    send: "Envoyer", rateLabel: "Évaluer cette conversation", rateAsk: "Comment était-ce ?", great: "Super", average: "Correct", poor: "Mauvais", thanks: "Merci pour votre avis !",
    online: "Nous sommes en ligne", offline: "Nous vous répondrons bientôt", notDelivered: "Non envoyé — veuillez réessayer plus tard.",
    newMessage: "Nouveau message ↓" },
  es: { title: "Chatea con nosotros", team: "Equipo", messages: "Mensajes del equipo", open: "Abrir chat", close: "Cerrar chat",
    unread: (n) => `Abrir chat (${n} mensaje${n > 1 ? "s" : ""} nuevo${n > 1 ? "s" : ""})`, messageFrom: (name) => `Mensaje de ${name}`,
    message: "Mensaje", dismiss: "Cerrar mensaje", replyPlaceholder: "Escribe una respuesta…", replyLabel: "Responder a este mensaje",
    chat: "Chat", conversation: "Conversación", writePlaceholder: "Escribe un mensaje…", writeLabel: "Escribe un mensaje",
    send: "Enviar", rateLabel: "Valora esta conversación", rateAsk: "¿Qué tal lo hicimos?", great: "Genial", average: "Normal", poor: "Mal", thanks: "¡Gracias por tu opinión!",
    online: "Estamos en línea", offline: "Te responderemos pronto", notDelivered: "No enviado: inténtalo de nuevo más tarde.",
    newMessage: "Mensaje nuevo ↓" },
};

for (const [lang, words] of Object.entries(LABELS)) words.lang = lang; // times are written the same way

export function widgetLabels(languages) {
  for (const tag of languages || []) {
    const primary = String(tag || "").toLowerCase().split("-")[0];
    if (LABELS[primary]) return LABELS[primary];
  }
  return LABELS.en;
}
