// Reception: find or register a patient, check in today's appointments, issue and print a
// walk-in ticket. Everything through the native API; field errors come from the 422's errors[].
(function () {
  "use strict";
  var clinic = null;
  var selected = null; // the patient a walk-in ticket is for, if any
  var pendingBody = null; // the registration a 409 is about
  var duplicateOf = null; // the existing record's URL from the 409

  Desk.start("/desk/reception").then(function (c) {
    clinic = c;
    loadAppointments();
  }, function (e) { Desk.say(document.getElementById("selected"), e.message, true); });

  // ---- Search, as you type (debounced) ----
  var search = document.getElementById("search");
  var results = document.getElementById("results");
  var lastQuery = "";
  search.addEventListener("input", Desk.debounce(function () {
    var q = search.value.trim();
    if (q === lastQuery) return;
    lastQuery = q;
    if (q.length < 2) { results.textContent = ""; return; }
    Desk.api("GET", "/v1/patients?limit=10&clinic_id=" + encodeURIComponent(clinic.id) +
      "&q=" + encodeURIComponent(q)).then(function (r) {
      if (q !== lastQuery) return; // an older answer arriving late
      results.textContent = "";
      if (r.status !== 200) { results.appendChild(Desk.el("li", {}, Desk.problemText(r))); return; }
      if (!r.body.items.length) { results.appendChild(Desk.el("li", { class: "muted" }, "No patient found")); return; }
      r.body.items.forEach(function (p) {
        var li = Desk.el("li");
        li.appendChild(Desk.el("span", {}, p.family_name + ", " + p.given_name + " · " + p.date_of_birth + " · " + p.mrn));
        var b = Desk.el("button", { type: "button", class: "secondary" }, "Select");
        b.setAttribute("aria-label", "Select " + p.given_name + " " + p.family_name);
        b.addEventListener("click", function () { choose(p); });
        li.appendChild(b);
        results.appendChild(li);
      });
    });
  }, 300));

  function choose(p) {
    selected = p;
    Desk.say(document.getElementById("selected"), "Selected: " + p.given_name + " " + p.family_name + " (" + p.mrn + ")");
    document.getElementById("walkin-for").textContent = "For the selected patient (" + p.mrn + ").";
  }

  // ---- Registration ----
  var form = document.getElementById("register");
  var fields = ["given_name", "family_name", "date_of_birth", "sex", "phone"];

  function clearErrors() {
    fields.forEach(function (f) {
      document.getElementById(f + "-error").textContent = "";
      document.getElementById(f).removeAttribute("aria-invalid");
    });
  }

  function showErrors(errors) {
    var first = null;
    var other = [];
    (errors || []).forEach(function (e) {
      var name = (e.pointer || "").replace(/^\//, "").split("/")[0];
      var input = fields.indexOf(name) >= 0 ? document.getElementById(name) : null;
      if (!input) { other.push(e.message || e.detail || ""); return; }
      document.getElementById(name + "-error").textContent = e.message || e.detail || "Not valid";
      input.setAttribute("aria-invalid", "true");
      if (!first) first = input;
    });
    if (first) first.focus();
    return other.join("; ");
  }

  function register(body) {
    var msg = document.getElementById("register-message");
    clearErrors();
    document.getElementById("duplicate").hidden = true;
    Desk.api("POST", "/v1/patients", body).then(function (r) {
      if (r.status === 201) {
        Desk.say(msg, "Registered " + r.body.given_name + " " + r.body.family_name + " (" + r.body.mrn + ").");
        form.reset();
        choose(r.body);
      } else if (r.status === 422 || r.status === 400) {
        var rest = showErrors(r.body && r.body.errors);
        Desk.say(msg, "Please correct the marked fields." + (rest ? " " + rest : ""), true);
      } else if (r.status === 409) {
        pendingBody = body;
        duplicateOf = r.body && r.body.related;
        document.getElementById("duplicate-text").textContent =
          "Probably already registered: " + Desk.problemText(r) + ".";
        document.getElementById("use-existing").hidden = !duplicateOf;
        document.getElementById("duplicate").hidden = false;
        Desk.say(msg, "");
        document.getElementById(duplicateOf ? "use-existing" : "create-anyway").focus();
      } else {
        Desk.say(msg, Desk.problemText(r), true);
      }
    });
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var body = { clinic_id: clinic.id };
    fields.forEach(function (f) {
      var v = document.getElementById(f).value.trim();
      if (v !== "" || f !== "phone") body[f] = v;
    });
    register(body);
  });

  document.getElementById("use-existing").addEventListener("click", function () {
    Desk.api("GET", duplicateOf).then(function (r) {
      document.getElementById("duplicate").hidden = true;
      if (r.status === 200) {
        choose(r.body);
        form.reset();
        Desk.say(document.getElementById("register-message"), "Using the existing record (" + r.body.mrn + ").");
      } else {
        Desk.say(document.getElementById("register-message"), Desk.problemText(r), true);
      }
    });
  });

  document.getElementById("create-anyway").addEventListener("click", function () {
    var body = Object.assign({}, pendingBody, { allow_duplicate: true });
    register(body);
  });

  // ---- Today's appointments ----
  function loadAppointments() {
    var list = document.getElementById("appointments");
    var msg = document.getElementById("appointments-message");
    var day = Desk.today(); // the clinic's day, not the browser's (nor UTC's)
    Desk.api("GET", "/v1/appointments?limit=200&clinic_id=" + encodeURIComponent(clinic.id) + "&day=" + day).then(function (r) {
      list.textContent = "";
      if (r.status !== 200) { Desk.say(msg, Desk.problemText(r), true); return; }
      if (!r.body.items.length) { Desk.say(msg, "No appointments today."); return; }
      Desk.say(msg, "");
      r.body.items.forEach(function (a) {
        var li = Desk.el("li");
        var label = Desk.el("span", {}, Desk.time(a.start) + " · " + (a.reason || "appointment") + " · " + a.status.replace("_", " "));
        li.appendChild(label);
        Desk.api("GET", "/v1/patients/" + encodeURIComponent(a.patient_id)).then(function (p) {
          if (p.status === 200) label.textContent = Desk.time(a.start) + " · " + p.body.given_name + " " + p.body.family_name + " · " + a.status.replace("_", " ");
        });
        if (a.status === "booked") {
          var b = Desk.el("button", { type: "button" }, "Check in");
          b.setAttribute("aria-label", "Check in the " + Desk.time(a.start) + " appointment");
          b.addEventListener("click", function () {
            b.disabled = true;
            Desk.api("POST", "/v1/appointments/" + encodeURIComponent(a.id) + "/check-in").then(function (c) {
              if (c.status === 201) { showTicket(c.body); loadAppointments(); }
              else { b.disabled = false; Desk.say(msg, Desk.problemText(c), true); }
            });
          });
          li.appendChild(b);
        }
        list.appendChild(li);
      });
    });
  }

  // ---- Walk-in tickets and the receipt ----
  document.getElementById("issue").addEventListener("click", function () {
    var body = { priority: document.getElementById("priority").value };
    if (selected) body.patient_id = selected.id;
    var msg = document.getElementById("issue-message");
    Desk.api("POST", "/v1/clinics/" + encodeURIComponent(clinic.id) + "/queue/tickets", body).then(function (r) {
      if (r.status === 201) {
        showTicket(r.body);
        Desk.say(msg, "Issued " + r.body.number + ".");
      } else if (r.status === 423) {
        Desk.say(msg, "The queue is closed for today.", true);
      } else {
        Desk.say(msg, Desk.problemText(r), true);
      }
    });
  });

  // The receipt holds the clinic, the number and the time only: nothing about the patient.
  function showTicket(t) {
    document.getElementById("receipt-clinic").textContent = clinic.name;
    document.getElementById("receipt-number").textContent = t.number;
    document.getElementById("receipt-time").textContent = Desk.dateTime(t.issued_at);
    document.getElementById("receipt").hidden = false;
    document.getElementById("print").hidden = false;
    Desk.say(document.getElementById("issue-message"), "Ticket " + t.number + " issued.");
  }
  document.getElementById("print").addEventListener("click", function () { window.print(); });
})();
