// The counter: call the next ticket, then mark it served or a no-show (If-Match on every move;
// a 412 reloads the ticket and says someone else changed it), recall a no-show once. The
// waiting list follows the clinic's live WebSocket, the token offered as a subprotocol.
(function () {
  "use strict";
  var clinic = null;
  var ticket = null; // the ticket at this counter
  var etag = null; // its ETag, sent as If-Match
  var delay = 1000;
  var nameInput = document.getElementById("counter-name");
  var message = document.getElementById("counter-message");
  var ticketMessage = document.getElementById("ticket-message");
  nameInput.value = Desk.store.getItem("careq.counter") || "";
  nameInput.addEventListener("change", function () { Desk.store.setItem("careq.counter", nameInput.value.trim()); });

  Desk.start("/desk/counter").then(function (c) {
    clinic = c;
    loadWaiting();
    connect();
  }, function (e) { Desk.say(message, e.message, true); });

  function show(t, tag) {
    ticket = t;
    etag = tag || etag;
    document.getElementById("current-number").textContent = t ? t.number : "—";
    document.getElementById("current-state").textContent = t ? (t.status.replace("_", " ") + (t.counter ? " · counter " + t.counter : "")) : "";
    document.getElementById("served").disabled = !t || t.status !== "called";
    document.getElementById("no-show").disabled = !t || t.status !== "called";
    document.getElementById("recall").disabled = !t || t.status !== "no_show" || t.recalled;
  }
  show(null);

  document.getElementById("call-next").addEventListener("click", function () {
    var counter = nameInput.value.trim();
    if (!counter) { Desk.say(message, "Enter your counter's name first.", true); nameInput.focus(); return; }
    Desk.store.setItem("careq.counter", counter);
    Desk.say(ticketMessage, "");
    Desk.api("POST", "/v1/clinics/" + encodeURIComponent(clinic.id) + "/queue/call-next", { counter: counter }).then(function (r) {
      if (r.status === 200) {
        show(r.body, r.headers.get("etag"));
        Desk.say(message, "Called " + r.body.number + " to counter " + counter + ".");
      } else if (r.status === 204) {
        Desk.say(message, "Nobody is waiting.");
      } else {
        Desk.say(message, Desk.problemText(r), true);
      }
    });
  });

  // Moves the current ticket with If-Match; 412 → reload and tell.
  function move(status, done) {
    if (!ticket) return;
    Desk.api("PATCH", "/v1/tickets/" + encodeURIComponent(ticket.id), { status: status },
      { "content-type": "application/merge-patch+json", "if-match": etag }).then(function (r) {
      if (r.status === 200) {
        show(r.body, r.headers.get("etag"));
        Desk.say(ticketMessage, done(r.body));
      } else if (r.status === 412) {
        reload("Someone else changed this ticket meanwhile; it has been reloaded. Check it and try again.");
      } else {
        Desk.say(ticketMessage, Desk.problemText(r), true);
      }
    });
  }

  function reload(why) {
    Desk.api("GET", "/v1/tickets/" + encodeURIComponent(ticket.id)).then(function (r) {
      if (r.status === 200) show(r.body, r.headers.get("etag"));
      Desk.say(ticketMessage, why, true);
    });
  }

  document.getElementById("served").addEventListener("click", function () {
    move("served", function (t) { return t.number + " served."; });
  });
  document.getElementById("no-show").addEventListener("click", function () {
    move("no_show", function (t) { return t.number + " marked as a no-show. You may recall it once."; });
  });
  document.getElementById("recall").addEventListener("click", function () {
    move("waiting", function (t) { return t.number + " is back in the queue."; });
  });

  // ---- The waiting list, live ----
  function loadWaiting() {
    Desk.api("GET", "/v1/clinics/" + encodeURIComponent(clinic.id) + "/queue").then(function (r) {
      if (r.status !== 200) return;
      var list = document.getElementById("waiting");
      list.textContent = "";
      var waiting = r.body.items.filter(function (t) { return t.status === "waiting"; });
      if (!waiting.length) list.appendChild(Desk.el("li", { class: "muted" }, r.body.closed ? "The queue is closed for today" : "Nobody is waiting"));
      waiting.forEach(function (t) {
        var li = Desk.el("li");
        li.appendChild(Desk.el("span", { class: "number" }, t.number));
        li.appendChild(Desk.el("span", { class: "muted" }, t.priority + " · waiting since " + Desk.time(t.issued_at)));
        list.appendChild(li);
      });
      // Another counter or a refresh may have moved our ticket: keep it current.
      if (ticket) {
        var mine = r.body.items.find(function (t) { return t.id === ticket.id; });
        if (mine && mine.version !== ticket.version) reload("This ticket was changed elsewhere; it has been reloaded.");
      }
    });
  }

  function connect() {
    var live = document.getElementById("live");
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + "/v1/clinics/" + encodeURIComponent(clinic.id) + "/queue/live",
      ["careq", "careq.bearer." + Desk.token()]);
    socket.onopen = function () { live.textContent = "(live)"; delay = 1000; loadWaiting(); };
    socket.onmessage = function () { loadWaiting(); };
    socket.onclose = function (e) {
      if (e.code === 1008) { live.textContent = "(signed out)"; return; }
      live.textContent = "(reconnecting…)";
      setTimeout(connect, e.code === 1001 ? 250 : delay);
      delay = e.code === 1001 ? 1000 : Math.min(delay * 2, 30000);
    };
  }
})();
