// What every staff page shares: the token (sessionStorage only, never a URL), calls to the
// native API, the clinic choice, the top bar and sign-out.
var Desk = (function () {
  "use strict";
  var store = window.sessionStorage;

  function token() { return store.getItem("careq.token"); }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "class") e.className = attrs[k]; else e.setAttribute(k, attrs[k]);
    });
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // Calls the API; resolves to {status, body, headers}. A 401 on a staff page means the token is
  // gone (expired, revoked): back to sign-in.
  function api(method, path, body, extra) {
    var headers = { accept: "application/json, application/problem+json" };
    if (token()) headers.authorization = "Bearer " + token();
    if (body !== undefined) headers["content-type"] = "application/json";
    Object.keys(extra || {}).forEach(function (k) { headers[k] = extra[k]; });
    return fetch(path, {
      method: method, headers: headers, cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (res) {
      return res.text().then(function (text) {
        var parsed = null;
        try { parsed = text ? JSON.parse(text) : null; } catch (e) { parsed = null; }
        if (res.status === 401 && token() && !(extra && extra.noSignOut)) {
          store.clear();
          location.replace("/desk?expired=1");
        }
        return { status: res.status, body: parsed, headers: res.headers };
      });
    });
  }

  function say(node, text, isError) {
    node.textContent = text || "";
    node.classList.toggle("error", !!isError);
  }

  // What a problem says, for a person.
  function problemText(r) {
    if (r.body && r.body.detail) return r.body.detail;
    if (r.body && r.body.title) return r.body.title;
    return "The server answered " + r.status;
  }

  function clinicId() { return store.getItem("careq.clinic"); }
  function clinicName() { return store.getItem("careq.clinicName") || ""; }

  // Requires a session; builds the top bar with the clinic choice, the page links, sign-out.
  function start(current) {
    if (!token()) { location.replace("/desk"); return Promise.reject(new Error("signed out")); }
    var bar = document.getElementById("bar");
    var select = document.getElementById("clinic");
    bar.querySelectorAll("nav a").forEach(function (a) {
      if (a.getAttribute("href") === current) a.setAttribute("aria-current", "page");
    });
    document.getElementById("signout").addEventListener("click", function () {
      api("DELETE", "/v1/auth/token", undefined, { noSignOut: "1" }).then(function () {
        store.clear();
        location.replace("/desk?signed_out=1");
      });
    });
    return api("GET", "/v1/clinics?limit=200").then(function (r) {
      if (r.status !== 200) throw new Error(problemText(r));
      select.textContent = "";
      r.body.items.forEach(function (c) {
        var o = el("option", { value: c.id }, c.name);
        select.appendChild(o);
      });
      if (!r.body.items.length) throw new Error("You belong to no clinic yet; ask an admin");
      var chosen = r.body.items.find(function (c) { return c.id === clinicId(); }) || r.body.items[0];
      select.value = chosen.id;
      remember(chosen);
      select.addEventListener("change", function () {
        var c = r.body.items.find(function (x) { return x.id === select.value; });
        remember(c);
        location.reload();
      });
      return chosen;
    });
  }

  function remember(c) {
    store.setItem("careq.clinic", c.id);
    store.setItem("careq.clinicName", c.name);
    store.setItem("careq.clinicZone", c.timezone || "");
  }

  // A debounced version of `f`: runs `ms` after the last call.
  function debounce(f, ms) {
    var timer = null;
    return function () {
      var args = arguments;
      clearTimeout(timer);
      timer = setTimeout(function () { f.apply(null, args); }, ms);
    };
  }

  // Dates and times are the clinic's: its day and its clock, not the browser's (a screen may be
  // set to another zone, or to UTC) — the API's days are the clinic's days.
  function clinicZone() { return store.getItem("careq.clinicZone") || undefined; }

  function formatter(locale, options) {
    try {
      return new Intl.DateTimeFormat(locale, Object.assign({ timeZone: clinicZone() }, options));
    } catch (e) {
      // A zone this browser does not know: its own zone rather than no time at all.
      return new Intl.DateTimeFormat(locale, options);
    }
  }

  // The time of day, HH:MM in the clinic's zone (the user's language decides 12 or 24 hours).
  function time(iso) {
    return formatter([], { hour: "2-digit", minute: "2-digit" }).format(iso ? new Date(iso) : new Date());
  }

  // Date and time, in the clinic's zone.
  function dateTime(iso) {
    return formatter([], { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" })
      .format(iso ? new Date(iso) : new Date());
  }

  // Today on the clinic's clock, YYYY-MM-DD (what the API's `day` parameters mean).
  function today() {
    var parts = formatter("en-US", { year: "numeric", month: "2-digit", day: "2-digit", numberingSystem: "latn" })
      .formatToParts(new Date());
    var part = function (t) { return parts.find(function (p) { return p.type === t; }).value; };
    return part("year") + "-" + part("month") + "-" + part("day");
  }

  return { api: api, el: el, say: say, problemText: problemText, start: start, debounce: debounce,
           clinicId: clinicId, clinicName: clinicName, token: token, time: time, dateTime: dateTime,
           today: today, store: store };
})();
