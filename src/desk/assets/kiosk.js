// The kiosk: one button that takes a walk-in number with the clinic's kiosk key (from the
// page's address) and shows it for a while. No staff login, no patient data.
(function () {
  "use strict";
  var clinic = location.pathname.split("/").pop();
  var key = new URLSearchParams(location.search).get("key") || "";
  var button = document.getElementById("take");
  var shown = document.getElementById("shown");
  var message = document.getElementById("kiosk-message");
  var clear = null;

  function say(text, isError) {
    message.textContent = text;
    message.classList.toggle("error", !!isError);
  }

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
