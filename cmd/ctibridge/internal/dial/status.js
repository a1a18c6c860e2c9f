// status.js follows the dial the /dial page placed, by polling
// GET /v1/dial/{id}, and says what the agent's desktop did with it. A page
// opened as a pop-up closes itself once the desktop is dialing. Its back
// link goes back in history, to the very record page (the Referer it was
// made from may name only the CRM's origin).
(function () {
  'use strict';
  var back = document.getElementById('back');
  if (back) {
    back.addEventListener('click', function (e) {
      if (history.length > 1) {
        e.preventDefault();
        history.back();
      }
    });
  }
  var main = document.getElementById('dial');
  var id = main && main.dataset.id;
  if (!id) return;
  var title = document.getElementById('title');
  var message = document.getElementById('message');
  var started = Date.now();
  var show = function (state, head, text) {
    main.dataset.state = state;
    title.textContent = head;
    message.textContent = text;
  };
  var poll = function () {
    fetch('/v1/dial/' + encodeURIComponent(id), { cache: 'no-store' }).then(function (r) {
      return r.json();
    }).then(function (d) {
      switch (d.state) {
        case 'dialing':
          show('dialing', 'Dialing', 'Your desktop is calling ' + d.to + '.');
          if (window.opener) setTimeout(function () { window.close(); }, 2000);
          return;
        case 'failed':
          show('failed', 'Not dialed', 'Your desktop could not dial ' + d.to + ': ' + (d.reason || 'no reason given') + '.');
          return;
        case 'expired':
          show('expired', 'Not dialed', (d.reason || 'No desktop took the call') + '.');
          return;
        case 'accepted':
          show('accepted', 'Dialing', 'Your desktop is placing the call to ' + d.to + '…');
          break;
      }
      if (Date.now() - started < 90000) setTimeout(poll, 150);
    }).catch(function () {
      if (Date.now() - started < 90000) setTimeout(poll, 1000);
    });
  };
  poll();
})();
