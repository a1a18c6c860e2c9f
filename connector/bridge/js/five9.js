// five9.js: Five9 CRM SDK (Five9.CrmSdk.interactionApi()). Posts each
// InteractionApi callback with its params, and what the SDK's getters say at
// that moment (getCav, getDispositions, getSelectedNameObject,
// getSelectedRelatedToObject, getMetadata), to POST /v1/events/five9. The
// SDK wipes an interaction's data once it is finished, so the getters are
// called inside every callback before *Finished (callEnded and chatEnded
// above all), and *Finished carries only its params and metadata; the daemon
// merges them. The tab holding the Web Lock sends. Dial commands call
// click2dial with the CRM object as crmObject.

(function () {
  var b = newBridge('five9');
  var EVENTS = [
    'callStarted', 'callAccepted', 'callRejected', 'callEnded', 'callFinished',
    'emailOffered', 'emailAccepted', 'emailRejected', 'emailTransferred', 'emailFinished',
    'chatOffered', 'chatAccepted', 'chatRejected', 'chatTransferred', 'chatEnded', 'chatFinished',
    'objectSelected'
  ];

  b.whenReady(function () {
    var sdk = lookup('Five9.CrmSdk');
    return sdk && sdk.interactionApi && sdk.interactionApi();
  }, function (api) {
    var call = function (method, arg) {
      return typeof api[method] === 'function' ? settle(api[method](arg)) : Promise.resolve(undefined);
    };
    var metadata = call('getMetadata');

    var read = function (name, params, receivedAt) {
      var type = name === 'objectSelected' ? (params && params.interactionType) || '' :
        name.replace(/^(call|chat|email).*$/, function (m, p) { return p.charAt(0).toUpperCase() + p.slice(1); });
      var data = (params && (params[type.toLowerCase() + 'Data'] || params.interactionData)) || {};
      var id = data.interactionId || (params && params.interactionId);
      var reads = { metadata: metadata };
      if (id && !/(Finished|Rejected)$/.test(name)) {
        // Called now, before the SDK can wipe the interaction.
        var q = { interactionType: type, interactionId: id };
        reads.cavs = call('getCav', { interactionId: id });
        reads.dispositions = call('getDispositions', q);
        reads.nameObject = call('getSelectedNameObject', q);
        reads.relatedToObject = call('getSelectedRelatedToObject', q);
      }
      var names = Object.keys(reads);
      return Promise.all(names.map(function (k) { return reads[k]; })).then(function (values) {
        var ev = { event: name, params: params || {} };
        names.forEach(function (k, i) {
          var v = values[i];
          if (v === undefined || v === null) return;
          if (k === 'metadata') v = { agentId: v.agentId, tenantId: v.tenantId };
          ev[k] = v;
        });
        ev.receivedAt = receivedAt;
        return ev;
      });
    };

    var handlers = {};
    EVENTS.forEach(function (name) {
      handlers[name] = function (params) {
        var receivedAt = b.now();
        b.receive(function () {
          return read(name, params, receivedAt);
        });
      };
    });
    api.subscribe(handlers);
    b.electByLock();

    b.listen({
      agent: function () {
        if (b.settings.agent) return Promise.resolve(b.settings.agent);
        return metadata.then(function (m) {
          return m && m.agentId != null ? String(m.agentId) : '';
        });
      },
      dial: function (cmd) {
        var data = { clickToDialNumber: cmd.to };
        var o = cmd.object;
        if (o && o.id) {
          var what = o.isWhat === true;
          data.crmObject = { id: String(o.id), label: String(o.type || o.label || ''), name: String(o.name || ''), isWho: !what, isWhat: what };
        }
        // click2dial returns nothing: the adapter dials, and selects the
        // object as the call's Name (or Related To) object.
        return api.click2dial({ click2DialData: data });
      }
    });
  });
})();
