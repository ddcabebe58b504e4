// Staff login for the dispatcher, technician and admin pages: the login form, tokens
// kept in sessionStorage (per page) so a reload or a language switch stays logged in,
// the access token refreshed when it expires, and formatting shared by the pages.
import { language, t } from "./i18n.js";
import { $ } from "./ui.js";

export class Staff {
  /// `page` names the stored login; `roles` are the roles this page is for.
  constructor(page, roles) {
    this.key = `fixline.staff.${page}`;
    this.roles = roles;
    this.auth = JSON.parse(sessionStorage.getItem(this.key) || "null");
  }

  get userId() {
    return this.auth && this.auth.user_id;
  }

  get role() {
    return this.auth && this.auth.role;
  }

  /// Wires #login-form and #logout; calls `onReady` once logged in.
  start(onReady) {
    $("login-form").onsubmit = async (ev) => {
      ev.preventDefault();
      $("login-error").textContent = "";
      try {
        const auth = await this.request("/auth/login", { method: "POST", body: { username: $("username").value, password: $("password").value }, anonymous: true });
        if (!this.roles.includes(auth.role)) {
          // Not this page's user: end the login that was just made.
          fetch("/api/v1/auth/logout", { method: "POST", headers: { authorization: `Bearer ${auth.access_token}` } }).catch(() => {});
          throw new Error(t("wrong_role", { role: t(`role_${auth.role}`) }));
        }
        this.save(auth);
        this.enter(onReady);
      } catch (e) {
        $("login-error").textContent = t("login_failed", { detail: e.message });
      }
    };
    $("logout").onclick = async () => {
      await this.call("/auth/logout", { method: "POST" }).catch(() => {});
      this.save(null);
      location.reload();
    };
    if (this.auth) this.enter(onReady);
  }

  enter(onReady) {
    $("login-card").hidden = true;
    $("logout").hidden = false;
    onReady();
  }

  save(auth) {
    this.auth = auth && { ...auth, expires_at: Date.now() + (auth.expires_in - 30) * 1000 };
    if (auth) sessionStorage.setItem(this.key, JSON.stringify(this.auth));
    else sessionStorage.removeItem(this.key);
  }

  async request(path, { method = "GET", body, anonymous } = {}) {
    const headers = {};
    if (!anonymous) headers.authorization = `Bearer ${this.auth.access_token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const r = await fetch(`/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const data = r.status === 204 ? null : await r.json().catch(() => null);
    if (!r.ok) {
      const e = new Error((data && data.detail) || r.statusText);
      e.status = r.status;
      throw e;
    }
    return data;
  }

  /// An authenticated API call; refreshes the access token when it has expired and
  /// shows the login form again when the login itself has ended.
  async call(path, opts = {}) {
    if (!this.auth) throw new Error(t("login_again"));
    if (Date.now() > this.auth.expires_at) await this.refresh();
    try {
      return await this.request(path, opts);
    } catch (e) {
      if (e.status !== 401) throw e;
      await this.refresh();
      return this.request(path, opts);
    }
  }

  async refresh() {
    try {
      const auth = await this.request("/auth/refresh", { method: "POST", body: { refresh_token: this.auth.refresh_token }, anonymous: true });
      this.save(auth);
    } catch {
      this.save(null);
      $("login-card").hidden = false;
      $("logout").hidden = true;
      throw new Error(t("login_again"));
    }
  }
}

/// Makes an element with a class and text.
export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

export const fmtTime = (iso) => (iso ? new Date(iso).toLocaleString(language(), { dateStyle: "short", timeStyle: "short" }) : "—");

export const fmtPercent = (rate) => (rate === null || rate === undefined ? "—" : new Intl.NumberFormat(language(), { style: "percent", maximumFractionDigits: 0 }).format(rate));

export const fmtNumber = (n, digits = 1) => (n === null || n === undefined ? "—" : new Intl.NumberFormat(language(), { maximumFractionDigits: digits }).format(n));

/// "in 3 h 20 min" / "2 h 5 min overdue" for a deadline.
export function fmtDue(iso, now = Date.now()) {
  const ms = new Date(iso).getTime() - now;
  const mins = Math.round(Math.abs(ms) / 60000);
  const span = mins >= 60 ? t("span_h_min", { h: Math.floor(mins / 60), m: mins % 60 }) : t("span_min", { m: mins });
  return ms >= 0 ? t("due_in", { span }) : t("overdue_by", { span });
}
