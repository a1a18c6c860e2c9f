// genesys.js: Genesys Workspace Web Edition, through the Service Client API
// (genesys.wwe.service). Posts every "interaction" message as the subscribe
// handler receives it, plus "agent" (agent.get) and "receivedAt", to
// POST /v1/events/genesys. WWE elects a leading tab among the agent's tabs
// (system events, data.frameState): only the LEADING frame sends, and a
// FOLLOWING frame does not queue, since the leader receives the same events.
// Dial commands call voice.dial (or voice.dialEx, with data-dial="dialEx")
// with the CRM object in userData.

(function () {
  var b = newBridge('genesys');

  b.whenReady(function () {
    return lookup('genesys.wwe.service');
  }, function (svc) {
    var agent = new Promise(function (resolve) {
      try {
        svc.agent.get(function (a) {
          resolve(a && typeof a === 'object' ? a : null);
        }, function (e) {
          b.warn('agent.get failed', e);
          resolve(null);
        });
      } catch (e) {
        b.warn('agent.get failed', e);
        resolve(null);
      }
    });

    // frame is this tab's frameState; '' until WWE says.
    var frame = '';
    var setFrame = function (state) {
      frame = state;
      b.log('frameState', state);
      b.setSender(state === 'LEADING');
    };

    // The Service Client API must be subscribed to only once.
    svc.subscribe(['interaction', 'system'], function (message) {
      if (!message || typeof message !== 'object') return;
      if (message.event === 'system') {
        var state = message.data && message.data.frameState;
        if (state) setFrame(state);
        return;
      }
      if (message.event !== 'interaction' || frame === 'FOLLOWING') return;
      var receivedAt = b.now();
      b.receive(function () {
        return settle(agent, 2000).then(function (a) {
          var ev = Object.assign({}, message);
          if (a) ev.agent = a;
          ev.receivedAt = receivedAt;
          return ev;
        });
      });
    }, null);

    // Ask once at start: a system event comes only with an election.
    var ask = function (name, state) {
      try {
        svc.system[name](function (r) {
          if (!frame && (r === true || (r && r.result === true))) setFrame(state);
        }, function () {});
      } catch (e) { /* older WWE: wait for a system event */ }
    };
    if (svc.system) {
      ask('isFrameLeading', 'LEADING');
      ask('isFrameFollowing', 'FOLLOWING');
    }

    b.listen({
      agent: function () {
        if (b.settings.agent) return Promise.resolve(b.settings.agent);
        return settle(agent, 5000).then(function (a) {
          return (a && (a.username || a.employeeId)) || '';
        });
      },
      dial: function (cmd) {
        // connector/genesys reads the CRM object back from these keys:
        // ctibridge_who_* for a person, ctibridge_what_* for the rest.
        var userData = {};
        var o = cmd.object;
        if (o && o.id) {
          var role = o.isWhat === true ? 'what' : 'who';
          userData['ctibridge_' + role + '_type'] = String(o.type || o.label || '');
          userData['ctibridge_' + role + '_id'] = String(o.id);
          userData['ctibridge_' + role + '_name'] = String(o.name || '');
        }
        return new Promise(function (resolve, reject) {
          var ok = function (r) {
            b.log('voice dial sent', cmd.to);
            resolve(r);
          };
          // data-dial="dialEx" uses voice.dialEx (destination, userData,
          // extensions), for WWE that routes it differently.
          if (b.settings.dial === 'dialEx' && typeof svc.voice.dialEx === 'function') {
            svc.voice.dialEx(cmd.to, userData, {}, ok, reject);
          } else {
            svc.voice.dial(cmd.to, userData, ok, reject);
          }
        });
      }
    });
  });
})();
