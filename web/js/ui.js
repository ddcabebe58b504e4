// Small page helpers shared by the customer page and the expert console.
export const $ = (id) => document.getElementById(id);

/// Shows a status line (announced to screen readers through aria-live).
export const status = (text) => ($("status").textContent = text);

/// Appends a chat line and keeps the newest in view.
export function log(who, text) {
  const p = document.createElement("p");
  p.textContent = `${who}: ${text}`;
  $("chat-log").append(p);
  $("chat-log").scrollTop = 1e9;
}
