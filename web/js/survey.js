// The satisfaction survey a customer opens from the link sent after a resolution
// (/survey#token=...). No login: the token answers this one survey only.
import { t, translatePage } from "./i18n.js";
import { $, status } from "./ui.js";

translatePage();
const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
let rating = 0;

for (let i = 1; i <= 5; i++) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "star secondary";
  b.dataset.rating = String(i);
  b.textContent = `${i} ★`;
  b.setAttribute("aria-pressed", "false");
  b.onclick = () => {
    rating = i;
    for (const s of document.querySelectorAll(".star")) s.setAttribute("aria-pressed", String(Number(s.dataset.rating) <= i));
    $("submit").disabled = false;
  };
  $("stars").append(b);
}

async function load() {
  const r = await fetch(`/api/v1/surveys/${encodeURIComponent(token)}`);
  if (!r.ok) {
    status(t(r.status === 410 ? "survey_expired" : "join_invalid"));
    $("survey-form").hidden = true;
    return;
  }
  const s = await r.json();
  $("wo-title").textContent = s.title;
  if (s.answered) {
    status(t("survey_thanks"));
    $("survey-form").hidden = true;
  }
}

$("survey-form").onsubmit = async (e) => {
  e.preventDefault();
  if (!rating) return;
  $("submit").disabled = true;
  const body = { rating, comment: $("comment").value, complaint: $("complaint").checked };
  const r = await fetch(`/api/v1/surveys/${encodeURIComponent(token)}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (r.ok) {
    const res = await r.json();
    status(t(res.reopened ? "survey_reopened" : "survey_thanks"));
    $("survey-form").hidden = true;
  } else {
    const p = await r.json().catch(() => ({}));
    status(p.detail || String(r.status));
    $("submit").disabled = false;
  }
};

load();
