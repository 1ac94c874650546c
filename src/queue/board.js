// The waiting-room board: listens to the clinic's live queue and shows numbers and counters,
// the last five calls, the clinic's name and a clock on the clinic's time; chimes on a new call
// once a tap allowed it.
// The board key arrives once in the address (`?key=`): it moves to this browser's storage (per
// clinic, so the wall screen comes back by itself after a restart) and out of the address bar,
// and the socket offers it as a subprotocol, never in a URL.
(function () {
  "use strict";
  var clinic = location.pathname.split("/").pop();
  var keyName = "careq.board.key." + clinic;
  var zoneName = "careq.board.timezone." + clinic;
  var store = null;
  try { store = window.localStorage; } catch (e) { store = null; }
  function stored(name) { try { return store ? store.getItem(name) : null; } catch (e) { return null; } }
  function keep(name, value) {
    try { if (store) { if (value === null) store.removeItem(name); else store.setItem(name, value); } } catch (e) { /* storage full or refused */ }
  }
  var given = new URLSearchParams(location.search).get("key");
  if (given) keep(keyName, given);
  if (location.search) history.replaceState(null, "", location.pathname);
  var key = given || stored(keyName) || "";
  var zone = stored(zoneName); // the clinic's time zone, from the last snapshot
  var statusLine = document.getElementById("status");
  var delay = 1000;
  var calls = []; // the last five calls, newest first: {number, counter}
  var audio = null; // an AudioContext, made by the first tap (browsers refuse sound before one)

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // HH:MM on the clinic's clock; nothing until its time zone is known (a wall clock showing the
  // screen's own zone would be wrong for the waiting room).
  function tick() {
    var text = "";
    if (zone) {
      try {
        var parts = new Intl.DateTimeFormat("en-GB", { timeZone: zone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" })
          .formatToParts(new Date());
        var part = function (t) { return (parts.find(function (p) { return p.type === t; }) || {}).value || ""; };
        text = part("hour").padStart(2, "0") + ":" + part("minute").padStart(2, "0");
      } catch (e) { text = ""; }
    }
    document.getElementById("clock").textContent = text;
  }
  tick();
  setInterval(tick, 1000);

  document.getElementById("chime").addEventListener("click", function () {
    var button = this;
    if (audio) {
      audio.close();
      audio = null;
      button.textContent = "Tap to turn the chime on";
      button.setAttribute("aria-pressed", "false");
      return;
    }
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) { button.textContent = "No sound on this screen"; return; }
    audio = new Ctx();
    button.textContent = "Chime on (tap to turn off)";
    button.setAttribute("aria-pressed", "true");
    chime();
  });

  // Two short tones, made here: no sound file to fetch.
  function chime() {
    if (!audio) return;
    [[660, 0], [880, 0.25]].forEach(function (tone) {
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      var at = audio.currentTime + tone[1];
      osc.frequency.value = tone[0];
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.3, at + 0.03);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.4);
      osc.connect(gain).connect(audio.destination);
      osc.start(at);
      osc.stop(at + 0.45);
    });
  }

  function remember(state) {
    if (state.kind === "snapshot") {
      // Start from who is being served now; later calls come one by one.
      if (!calls.length) {
        calls = state.now_serving.map(function (t) { return { number: t.number, counter: t.counter }; });
      }
    } else if (state.kind === "called" && state.ticket) {
      calls = calls.filter(function (c) { return c.number !== state.ticket.number; });
      calls.unshift({ number: state.ticket.number, counter: state.ticket.counter });
      chime();
    }
    calls = calls.slice(0, 5);
  }

  function render(state) {
    if (state.timezone && state.timezone !== zone) {
      zone = state.timezone;
      keep(zoneName, zone);
      tick();
    }
    if (state.clinic) {
      document.getElementById("clinic").textContent = state.clinic;
      document.title = "Now serving · " + state.clinic;
    }
    remember(state);
    var serving = document.getElementById("serving");
    serving.textContent = "";
    if (!calls.length) {
      serving.appendChild(el("p", "empty", state.closed ? "The queue is closed for today" : "Please wait to be called"));
    }
    calls.forEach(function (t, i) {
      var row = el("div", i === 0 && state.kind === "called" ? "call fresh" : "call");
      row.appendChild(el("span", "number", t.number));
      row.appendChild(el("span", "counter", t.counter ? "Counter " + t.counter : ""));
      serving.appendChild(row);
    });
    var next = document.getElementById("next");
    next.textContent = "";
    state.next.forEach(function (t) { next.appendChild(el("li", "", t.number)); });
  }

  function connect() {
    if (!key) {
      statusLine.textContent = "This screen has no board key; open the board link an admin made";
      return;
    }
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var url = scheme + location.host + "/v1/clinics/" + encodeURIComponent(clinic) + "/queue/live";
    var socket;
    try {
      socket = new WebSocket(url, ["careq", "careq.board." + key]);
    } catch (e) {
      // Not a key the browser can even offer (a mangled link).
      keep(keyName, null);
      statusLine.textContent = "This board link is not valid; open the board link an admin made";
      return;
    }
    socket.onopen = function () {
      statusLine.textContent = "Live";
      document.body.classList.remove("reconnecting");
      delay = 1000;
    };
    socket.onmessage = function (m) {
      try { render(JSON.parse(m.data)); } catch (e) { /* ignore a malformed message */ }
    };
    socket.onclose = function (e) {
      // 1008: the board key was replaced; retrying with it cannot succeed.
      if (e.code === 1008) {
        keep(keyName, null);
        statusLine.textContent = "This board link is no longer valid; open the new one";
        return;
      }
      statusLine.textContent = "Reconnecting…";
      document.body.classList.add("reconnecting");
      // 1001: the server is restarting; the next process is up at once, so try right away.
      setTimeout(connect, e.code === 1001 ? 250 : delay);
      delay = e.code === 1001 ? 1000 : Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
