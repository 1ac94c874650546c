// Sign-in: username and password for a token, kept in sessionStorage (this tab only).
(function () {
  "use strict";
  var form = document.getElementById("signin");
  var message = document.getElementById("signin-message");
  var params = new URLSearchParams(location.search);
  if (params.has("expired")) Desk.say(message, "Your session ended; please sign in again.", true);
  if (params.has("signed_out")) Desk.say(message, "You are signed out.");
  if (Desk.token()) location.replace("/desk/reception");

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var username = document.getElementById("username").value.trim();
    var password = document.getElementById("password").value;
    if (!username || !password) {
      Desk.say(message, "Enter your username and password.", true);
      return;
    }
    var button = document.getElementById("signin-button");
    button.disabled = true;
    Desk.say(message, "Signing in…");
    Desk.api("POST", "/v1/auth/token", { username: username, password: password }).then(function (r) {
      button.disabled = false;
      if (r.status === 200) {
        Desk.store.setItem("careq.token", r.body.access_token);
        return Desk.api("GET", "/v1/me").then(function (me) {
          var role = me.body && me.body.role;
          Desk.store.setItem("careq.role", role || "");
          location.replace(role === "clinician" ? "/desk/counter" : "/desk/reception");
        });
      }
      if (r.status === 401) {
        Desk.say(message, "Wrong username or password.", true);
      } else if (r.status === 429) {
        var wait = Number(r.headers.get("retry-after") || 60);
        Desk.say(message, "Too many failed attempts. Try again in " + Math.ceil(wait / 60) + " minute(s).", true);
      } else {
        Desk.say(message, Desk.problemText(r), true);
      }
      document.getElementById("password").value = "";
      document.getElementById("password").focus();
    }, function () {
      button.disabled = false;
      Desk.say(message, "The server cannot be reached. Check the network and try again.", true);
    });
  });
})();
