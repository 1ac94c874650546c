// The kiosk: one button that takes a walk-in number with the clinic's kiosk key and shows it
// for a while. No staff login, no patient data. The key arrives once in the address (`?key=`):
// it moves to this browser's storage (per clinic, so the kiosk works again after a restart)
// and out of the address bar, where a patient could read it off the screen.
(function () {
  "use strict";
  var clinic = location.pathname.split("/").pop();
  var keyName = "careq.kiosk.key." + clinic;
  var store = null;
  try { store = window.localStorage; } catch (e) { store = null; }
  function keep(value) {
    try { if (store) { if (value === null) store.removeItem(keyName); else store.setItem(keyName, value); } } catch (e) { /* storage full or refused */ }
  }
  var given = new URLSearchParams(location.search).get("key");
  if (given) keep(given);
  if (location.search) history.replaceState(null, "", location.pathname);
  var key = given;
  if (!key) { try { key = store ? store.getItem(keyName) : null; } catch (e) { key = null; } }
  key = key || "";
  var button = document.getElementById("take");
  var shown = document.getElementById("shown");
  var message = document.getElementById("kiosk-message");
  var clear = null;

  function say(text, isError) {
    message.textContent = text;
    message.classList.toggle("error", !!isError);
  }

  if (!key) say("This kiosk is not set up (it has no key). Please ask at the desk.", true);

  button.addEventListener("click", function () {
    button.disabled = true;
    clearTimeout(clear);
    fetch("/v1/clinics/" + encodeURIComponent(clinic) + "/kiosk/tickets", {
      method: "POST", cache: "no-store",
      headers: { authorization: "Bearer " + key, accept: "application/json, application/problem+json" },
    }).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (body) {
        button.disabled = false;
        if (res.status === 201) {
          document.getElementById("kiosk-clinic").textContent = body.clinic_name;
          shown.textContent = body.number;
          var ahead = body.position ? body.position - 1 : 0;
          say("Your number is " + body.number + ". " + (ahead === 0 ? "You are next." : ahead + " ahead of you."));
        } else if (res.status === 429) {
          shown.textContent = "";
          say("Please wait " + (res.headers.get("retry-after") || "a few") + " seconds and try again.", true);
        } else if (res.status === 423) {
          shown.textContent = "";
          say("The queue is closed for today. Please ask at the desk.", true);
        } else if (res.status === 401) {
          keep(null);
          key = "";
          shown.textContent = "";
          say("This kiosk is not set up (its link is no longer valid). Please ask at the desk.", true);
        } else {
          shown.textContent = "";
          say("Something went wrong. Please ask at the desk.", true);
        }
        clear = setTimeout(function () { shown.textContent = ""; say(""); }, 20000);
      });
    }, function () {
      button.disabled = false;
      say("The kiosk cannot reach the server. Please ask at the desk.", true);
    });
  });
})();
