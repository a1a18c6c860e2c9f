// tel-links.js turns the tel: links of a CRM page into ctibridge dials:
// a click on <a href="tel:+14155550100"> opens the daemon's /dial page in a
// small window, which sends the call to the agent's contact-center desktop
// and says what happened (it closes itself once the desktop is dialing).
//
//   <script src="https://ctibridge.example/…/tel-links.js"
//           data-daemon="https://ctibridge.example"
//           data-object="Contact:0035g00000XyZ12AAB" data-name="Maria Lopez"></script>
//
// Settings (data- attributes of the script tag; a link's own data-object
// and data-name win over the tag's):
//   data-daemon  the daemon's origin (default: this script's own origin)
//   data-object  the record the page shows, Type:ID: the call is logged
//                against it
//   data-name    that record's name
//   data-agent   the agent whose desktop dials; by default the daemon
//                knows it from the cookie its bridge set in this browser
//   data-user    the CRM user id, mapped to an agent by dial.users
//
// Plain ES2017, no dependencies. Clicks with a modifier key (open in a new
// tab, …) keep the browser's own tel: handling.
(function () {
  'use strict';
  var me = document.currentScript;
  var d = (me && me.dataset) || {};
  var daemon = (d.daemon || (me && me.src ? new URL(me.src, location.href).origin : location.origin)).replace(/\/+$/, '');

  document.addEventListener('click', function (e) {
    var a = e.target && e.target.closest ? e.target.closest('a[href^="tel:"]') : null;
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    var q = new URLSearchParams();
    var number = a.getAttribute('href').slice(4);
    try {
      number = decodeURIComponent(number);
    } catch (x) { /* keep it as written */ }
    q.set('to', number);
    var object = a.dataset.object || d.object;
    var name = a.dataset.name || d.name;
    if (object) q.set('object', object);
    if (name) q.set('name', name);
    if (d.agent) q.set('agent', d.agent);
    if (d.user) q.set('user', d.user);
    window.open(daemon + '/dial?' + q.toString(), 'ctibridge-dial', 'width=460,height=280');
  });
})();
