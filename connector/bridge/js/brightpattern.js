// brightpattern.js: Bright Pattern Agent Desktop client-side API. Posts
// ON_SAVE_ACTIVITY_RECORD (the whole InteractionData, when it is time to
// save the activity) and ON_INTERACTION_END, as
// {"event":…,"agentId":data-agent,"data":{…},"receivedAt":…}, to
// POST /v1/events/brightpattern. The API object is the global named by
// data-sdk (default adApi). The tab holding the Web Lock sends.
// Dial commands call the Embedded Agent Desktop API's
// window.bpspat.api.dialNumber(number), which takes only a number: the
// daemon links the call to the record clicked from by agent, number and
// time (dial.link_window).

(function () {
  var b = newBridge('brightpattern');

  b.whenReady(function () {
    var api = lookup(b.settings.sdk || 'adApi');
    return api && typeof api.on === 'function' ? api : null;
  }, function (api) {
    ['ON_SAVE_ACTIVITY_RECORD', 'ON_INTERACTION_END'].forEach(function (name) {
      api.on(name, function (data) {
        var receivedAt = b.now();
        b.receive(function () {
          var ev = { event: name };
          if (b.settings.agent) ev.agentId = b.settings.agent;
          ev.data = data;
          ev.receivedAt = receivedAt;
          return ev;
        });
      });
    });
    b.electByLock();

    b.listen({
      agent: function () {
        return Promise.resolve(b.settings.agent);
      },
      dial: function (cmd) {
        var dialer = lookup('bpspat.api');
        if (!dialer || typeof dialer.dialNumber !== 'function') {
          throw new Error('window.bpspat.api.dialNumber is not on this page: include the Agent Desktop SDK (servicepattern-sdk-v1.js)');
        }
        return dialer.dialNumber(cmd.to);
      }
    });
  });
})();
