// A stand-in for the Five9 CRM SDK (window.Five9.CrmSdk.interactionApi()),
// behaving as its InteractionApi documentation says: subscribe() takes the
// callbacks; getCav, getDispositions, getSelectedNameObject,
// getSelectedRelatedToObject and getMetadata resolve asynchronously; and an
// interaction's data is cleaned up once it is finished, before the
// callFinished callback runs, so that the getters then return nothing.
// window.fake is the test's handle.
(function () {
  var subscribers = [];
  var live = {}; // interactionId → data, until finished
  var dials = [];
  var later = function (fn) {
    return new Promise(function (resolve) {
      setTimeout(function () { resolve(fn()); }, 5);
    });
  };
  var get = function (id, field, none) {
    return later(function () {
      var d = live[id];
      return d && d[field] !== undefined ? d[field] : none;
    });
  };
  var api = {
    subscribe: function (callbacks) { subscribers.push(callbacks); },
    getCav: function (p) { return get(p.interactionId, 'cavs', []); },
    getDispositions: function (p) { return get(p.interactionId, 'dispositions', []); },
    getSelectedNameObject: function (p) { return get(p.interactionId, 'nameObject', undefined); },
    getSelectedRelatedToObject: function (p) { return get(p.interactionId, 'relatedToObject', undefined); },
    getMetadata: function () { return later(function () { return { agentId: 138592, tenantId: 131072 }; }); },
    click2dial: function (p) {
      if (fake.failNext) {
        var reason = fake.failNext;
        fake.failNext = '';
        throw new Error(reason);
      }
      dials.push(p);
      fake.dialTimes.push(performance.timeOrigin + performance.now());
      if (fake.quiet) return;
      // The adapter dials, and the call that follows has the clicked
      // object selected as its Name (or Related To) object.
      var d = p.click2DialData;
      var o = d.crmObject;
      fake.call('C2D' + dials.length + Date.now(), {
        outbound: true, number: d.clickToDialNumber,
        nameObject: o && o.isWho ? o : undefined, relatedToObject: o && o.isWhat ? o : undefined
      });
    }
  };
  window.Five9 = { CrmSdk: { interactionApi: function () { return api; } } };

  var emit = function (name, params) {
    subscribers.forEach(function (s) {
      if (typeof s[name] === 'function') s[name](JSON.parse(JSON.stringify(params)));
    });
  };
  var pause = function (ms) {
    return new Promise(function (r) { setTimeout(r, ms); });
  };

  var fake = window.fake = {
    dials: dials,
    // dialTimes are when each dial was called (ms since the epoch, with
    // fractions); quiet plays no call after a dial; failNext makes the next
    // dial fail with that reason.
    dialTimes: [],
    quiet: false,
    failNext: '',
    ready: function () { return subscribers.length > 0; },
    // call plays one whole call: started, accepted, a Name object
    // selected, ended (the agent wraps up), finished with a disposition.
    call: async function (id, opts) {
      opts = opts || {};
      var number = opts.number || '4155550142';
      var callData = {
        interactionId: id, callType: opts.outbound ? 'OUTBOUND' : 'INBOUND', number: number,
        ani: opts.outbound ? '8005550199' : number, dnis: opts.outbound ? number : '8005550199',
        campaignName: 'Sales Inbound', skillName: 'Sales', sessionId: id, isTransferredCall: false
      };
      var nameObject = opts.nameObject || { id: '0035g00000XyZ12AAB', label: 'Contact', name: 'Maria Lopez', isWho: true, isWhat: false };
      live[id] = {
        cavs: [{ id: '219', group: 'Customer', name: 'tier', type: 'STRING', value: 'gold' }],
        dispositions: [{ id: '3558', name: 'Sale Closed' }, { id: '3559', name: 'Call Back' }]
      };
      emit('callStarted', { callData: callData });
      await pause(20);
      emit('callAccepted', { callData: callData });
      await pause(20);
      live[id].nameObject = nameObject;
      if (opts.relatedToObject) live[id].relatedToObject = opts.relatedToObject;
      emit('objectSelected', { interactionType: 'Call', interactionData: { interactionId: id } });
      await pause(20);
      emit('callEnded', { callData: callData });
      await pause(50); // wrap-up
      delete live[id]; // finished: the SDK cleans the data up first
      emit('callFinished', {
        callData: callData,
        callLogData: { dispositionId: '3558', dispositionName: 'Sale Closed', comments: 'bridge test' }
      });
    }
  };
})();
