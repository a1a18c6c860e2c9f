// A real CometD server (npm cometd-nodejs-server, the CometD project's own)
// for the Go client's tests. Loopback only.
//
// Environment:
//   PORT                 port to listen on (0: any; printed as "PORT <n>")
//   COMETD_TIMEOUT       ms a /meta/connect is held (advice.timeout), default 2000
//   COMETD_MAX_INTERVAL  ms a session lives without a /meta/connect, default 10000
//   COMETD_AUTH          "user:password": handshakes without that Basic auth are denied
//
// Routes:
//   POST /cometd                 the Bayeux endpoint
//   POST /publish?channel=NAME   publishes the JSON body on NAME; answers {"subscribers":n}
//   GET  /stats?channel=NAME     {"subscribers":n,"meta":{"/meta/handshake":n,...},"auth":[...]}
//
// The process exits when its standard input closes, so it never outlives
// the test that started it.
'use strict';

const http = require('http');
const cometd = require('cometd-nodejs-server');

const server = cometd.createCometDServer({
    timeout: Number(process.env.COMETD_TIMEOUT || 2000),
    maxInterval: Number(process.env.COMETD_MAX_INTERVAL || 10000),
});

const meta = {};   // meta channel -> messages received
const auth = [];   // Authorization header of every Bayeux request
server.addExtension({
    incoming: (cometdServer, session, message, callback) => {
        if (message.channel.startsWith('/meta/')) {
            meta[message.channel] = (meta[message.channel] || 0) + 1;
        }
        callback(undefined, message);
    },
});

const want = process.env.COMETD_AUTH;
if (want) {
    const expected = 'Basic ' + Buffer.from(want).toString('base64');
    server.policy = {
        canHandshake: (session, message, callback) => {
            const req = server.context.request;
            callback(undefined, !!req && req.headers.authorization === expected);
        },
    };
}

function subscribers(name) {
    // Channels without subscribers are swept: look the channel up now, never
    // keep a channel object from earlier.
    const channel = name ? server.getServerChannel(name) : null;
    return channel ? channel.subscribers.length : 0;
}

function json(res, status, value) {
    res.statusCode = status;
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify(value) + '\n');
}

http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname === '/publish' && req.method === 'POST') {
        const name = url.searchParams.get('channel');
        let body = '';
        req.setEncoding('utf8');
        req.on('data', chunk => body += chunk);
        req.on('end', () => {
            let data;
            try {
                data = JSON.parse(body);
            } catch (e) {
                return json(res, 400, {error: 'body is not JSON: ' + e.message});
            }
            const n = subscribers(name);
            server.createServerChannel(name).publish(null, data, () => json(res, 200, {subscribers: n}));
        });
        return;
    }
    if (url.pathname === '/stats') {
        return json(res, 200, {subscribers: subscribers(url.searchParams.get('channel')), meta: meta, auth: auth});
    }
    if (url.pathname === '/cometd') {
        auth.push(req.headers.authorization || '');
        return server.handle(req, res);
    }
    json(res, 404, {error: 'no route ' + url.pathname});
}).listen(Number(process.env.PORT || 0), '127.0.0.1', function () {
    console.log('PORT ' + this.address().port);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
