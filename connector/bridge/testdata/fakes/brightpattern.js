// A stand-in for the Bright Pattern Agent Desktop client-side API
// (window.adApi): on(event, handler) registers a handler;
// ON_INTERACTION_END and then ON_SAVE_ACTIVITY_RECORD deliver the whole
// InteractionData of a completed interaction. And for the Embedded Agent
// Desktop API's window.bpspat.api.dialNumber(number), which returns
// nothing: the call it starts is an outbound interaction with that number,
// linked to no CRM record. window.fake is the test's handle.
(function () {
  var handlers = {};
  var dials = [];
  window.adApi = {
    on: function (event, handler) {
      (handlers[event] = handlers[event] || []).push(handler);
    }
  };
  window.bpspat = {
    api: {
      dialNumber: function (number) {
        if (fake.failNext) {
          var reason = fake.failNext;
          fake.failNext = '';
          throw new Error(reason);
        }
        dials.push({ number: number });
        fake.dialTimes.push(performance.timeOrigin + performance.now());
        if (!fake.quiet) setTimeout(function () { fake.call('BPDIAL' + dials.length + '-' + Date.now(), { outbound: true, number: number }); }, 5);
      }
    }
  };
  var emit = function (event, data) {
    (handlers[event] || []).forEach(function (h) { h(JSON.parse(JSON.stringify(data))); });
  };
  var fake = window.fake = {
    dials: dials,
    // dialTimes are when each dial was called (ms since the epoch, with
    // fractions); quiet plays no call after a dial; failNext makes the next
    // dial fail with that reason.
    dialTimes: [],
    quiet: false,
    failNext: '',
    ready: function () { return (handlers.ON_SAVE_ACTIVITY_RECORD || []).length > 0; },
    call: async function (id, opts) {
      opts = opts || {};
      var now = Date.now();
      var number = opts.number || '+14155550142';
      var data = {
        interactionId: id, globalInteractionId: 'G-' + id, state: 'completed', type: 'voice',
        callDirection: opts.outbound ? 'outbound' : 'inbound', phoneNumber: number,
        service: 'Sales Inbound', startTime: now - 385000, endTime: now, duration: 385,
        disposition: 'Sale Closed', subject: 'Upgrade', description: 'bridge test',
        callMuted: false, callRecording: false, attachedData: { tier: 'gold' },
        callParties: [{ id: 'p-1', name: 'Maria Lopez', phone: number }],
        associatedObjects: [{ id: '0035g00000XyZ12AAB', type: 'contact', displayName: 'Maria Lopez', displayType: 'Contact' }]
      };
      if (opts.outbound) {
        data.ANI = '+18005550199';
        data.DNIS = number;
        data.startTime = now - 2000; // the call just made
        data.associatedObjects = [];
        data.callParties = [{ id: 'p-1', phone: number }];
      } else {
        data.ANI = number;
        data.DNIS = '+18005550199';
      }
      emit('ON_INTERACTION_END', data);
      await new Promise(function (r) { setTimeout(r, 20); });
      emit('ON_SAVE_ACTIVITY_RECORD', data);
    }
  };
})();
