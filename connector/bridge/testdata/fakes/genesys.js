// A stand-in for the Genesys WWE Service Client API (genesys.wwe.service),
// behaving as its guide says: subscribe(topics, handler, context) delivers
// {event, data, userAgent, protocolVersion} messages; system messages carry
// data.frameState (LEADING, FOLLOWING, NEGOTIATING); system.isFrameLeading
// and isFrameFollowing answer through callbacks; agent.get(succeeded,
// failed) returns the Agent; voice.dial(destination, userData, succeeded,
// failed) starts a call whose interaction carries userData. The page's
// ?frame= says whether this tab leads (default LEADING). Each tab numbers
// its interactions itself (interactionId), as WWE does; interactionUUID and
// callUuid are the same in every tab. window.fake is the test's handle.
(function () {
  var frame = new URLSearchParams(location.search).get('frame') || 'LEADING';
  var subscriptions = [];
  var dials = [];
  var localIds = 0;
  var later = function (fn) { setTimeout(fn, 5); };

  var svc = {
    subscribe: function (topics, handler, context) {
      subscriptions.push({ topics: topics, handler: handler, context: context });
    },
    agent: {
      get: function (succeeded) {
        later(function () {
          succeeded({ employeeId: '1001', firstname: 'Jane', lastname: 'Doe', username: 'jdoe' });
        });
      }
    },
    system: {
      isFrameLeading: function (succeeded) { later(function () { succeeded(frame === 'LEADING'); }); },
      isFrameFollowing: function (succeeded) { later(function () { succeeded(frame === 'FOLLOWING'); }); }
    },
    voice: {
      dial: function (destination, userData, succeeded, failed) {
        dials.push({ destination: destination, userData: userData });
        fake.dialTimes.push(performance.timeOrigin + performance.now());
        if (fake.failNext) {
          var reason = fake.failNext;
          fake.failNext = '';
          later(function () { failed({ errorMessage: reason }); });
          return;
        }
        later(function () { if (succeeded) succeeded({}); });
        if (!fake.quiet) fake.call('DIAL' + dials.length + '-' + Date.now(), { outbound: true, number: destination, userData: userData });
      }
    }
  };
  window.genesys = { wwe: { service: svc } };

  var emit = function (message) {
    message.userAgent = 'WWE Server';
    message.protocolVersion = 2;
    subscriptions.forEach(function (s) {
      if (s.topics.indexOf(message.event) >= 0) s.handler.call(s.context, JSON.parse(JSON.stringify(message)));
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
    ready: function () { return subscriptions.length > 0; },
    elect: function (state) {
      frame = state;
      emit({ event: 'system', data: { frameState: state } });
    },
    // call plays one voice call through to Done: ADDED, ESTABLISHED,
    // ATTACHED_DATA_CHANGED (the disposition), RELEASED, MARKDONE_APPLY,
    // REMOVED.
    call: async function (uuid, opts) {
      opts = opts || {};
      var number = opts.number || '+14155550142';
      var userData = Object.assign({ Queue: 'Support_Internet' }, opts.userData || {});
      var ix = {
        interactionId: String(++localIds), interactionUUID: uuid, callUuid: uuid,
        caseId: 'case-' + uuid, userData: userData, parties: [{ name: number }],
        state: opts.outbound ? 'DIALING' : 'RINGING', previousState: 'UNKNOWN', isConsultation: false,
        direction: opts.outbound ? 'OUT' : 'IN', callType: opts.outbound ? 'Outbound' : 'Inbound',
        isMainCaseInteraction: true
      };
      if (opts.outbound) ix.dnis = number; else { ix.ani = number; ix.dnis = '+18005550199'; }
      var step = async function (eventType, state) {
        ix.previousState = ix.state;
        ix.state = state;
        emit({ event: 'interaction', data: { eventType: eventType, media: 'voice', interaction: ix } });
        await pause(20);
      };
      await step('ADDED', ix.state);
      await step('ESTABLISHED', 'TALKING');
      userData.DispositionCode = 'Sale';
      await step('ATTACHED_DATA_CHANGED', 'TALKING');
      await step('RELEASED', 'IDLE');
      await step('MARKDONE_APPLY', 'IDLE');
      await step('REMOVED', 'IDLE');
    }
  };
})();
