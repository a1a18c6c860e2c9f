// A stand-in for the Bright Pattern Agent Desktop client-side API
// (window.adApi): on(event, handler) registers a handler;
// ON_INTERACTION_END and then ON_SAVE_ACTIVITY_RECORD deliver the whole
// InteractionData of a completed interaction. window.fake is the test's
// handle.
(function () {
  var handlers = {};
  window.adApi = {
    on: function (event, handler) {
      (handlers[event] = handlers[event] || []).push(handler);
    }
  };
  var emit = function (event, data) {
    (handlers[event] || []).forEach(function (h) { h(JSON.parse(JSON.stringify(data))); });
  };
  window.fake = {
    ready: function () { return (handlers.ON_SAVE_ACTIVITY_RECORD || []).length > 0; },
    call: async function (id) {
      var now = Date.now();
      var data = {
        interactionId: id, globalInteractionId: 'G-' + id, state: 'completed', type: 'voice',
        callDirection: 'inbound', ANI: '+14155550142', DNIS: '+18005550199', phoneNumber: '+14155550142',
        service: 'Sales Inbound', startTime: now - 385000, endTime: now, duration: 385,
        disposition: 'Sale Closed', subject: 'Upgrade', description: 'bridge test',
        callMuted: false, callRecording: false, attachedData: { tier: 'gold' },
        callParties: [{ id: 'p-1', name: 'Maria Lopez', phone: '+14155550142' }],
        associatedObjects: [{ id: '0035g00000XyZ12AAB', type: 'contact', displayName: 'Maria Lopez', displayType: 'Contact' }]
      };
      emit('ON_INTERACTION_END', data);
      await new Promise(function (r) { setTimeout(r, 20); });
      emit('ON_SAVE_ACTIVITY_RECORD', data);
    }
  };
})();
