// check.mjs drives a dashboard's OFREP endpoints with OpenFeature's published JavaScript
// providers, used as an app would use them: the server provider (@openfeature/ofrep-provider,
// one POST per evaluation, dynamic context) and the web provider (@openfeature/ofrep-web-provider,
// bulk evaluation of a static context, then polling with If-None-Match).
//
//	OFREP_TOKEN=<token with rollout:decide> node check.mjs <dashboard URL> [flag key]
//
// It reads one step a line (JSON) on stdin and answers each with one JSON line on stdout, so the
// Go test (internal/web/ofrep_conformance_test.go) can change the rollout between steps:
//
//	{"op":"server","context":{...},"flag":"k"}  evaluate with the server provider ("flag" defaults
//	                                            to the flag key given on the command line)
//	{"op":"web.start","context":{...}}          set the web provider up with that static context
//	{"op":"web.get","flag":"k"}                 evaluate from the web provider's cache
//	{"op":"web.context","context":{...}}        change the static context (the provider re-fetches)
//	{"op":"web.notModified"}                    wait for the next poll answered 304 Not Modified
//	{"op":"web.changed"}                        wait for the provider to report that the flag changed
//	                                            since the previous answer, then evaluate it
//
// An evaluation answers {step, value, variant, reason, errorCode, errorMessage, flagMetadata}; a
// web step also reports a bulk request as http: {status, ifNoneMatch, etag}: the first one for
// web.start, the one that brought the change for web.changed, else the last one. A step that
// cannot be carried out answers {step, fatal}. The script ends when stdin closes.
import { createInterface } from 'node:readline';

import { OFREPProvider } from '@openfeature/ofrep-provider';
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';
import { OpenFeature as ServerFeature } from '@openfeature/server-sdk';
import { OpenFeature as WebFeature, ProviderEvents } from '@openfeature/web-sdk';

const [baseUrl, flagKey = 'tensfer-production'] = process.argv.slice(2);
const token = process.env.OFREP_TOKEN;
if (!baseUrl || !token) {
  console.error('usage: OFREP_TOKEN=<token> node check.mjs <dashboard URL> [flag key]');
  process.exit(2);
}
const headers = [['Authorization', `Bearer ${token}`]];

// The web provider's bulk requests, as the wire saw them: the last one, and waiters for a 304.
let lastBulk = null;
const waitingFor304 = [];
async function recordingFetch(request, init) {
  const res = await fetch(request, init);
  if (new URL(request.url).pathname.endsWith('/ofrep/v1/evaluate/flags')) {
    lastBulk = { status: res.status, ifNoneMatch: request.headers.get('If-None-Match'), etag: res.headers.get('ETag') };
    if (res.status === 304) {
      waitingFor304.splice(0).forEach((resolve) => resolve(lastBulk));
    }
  }
  return res;
}

// Changes of the flag that the web provider reported since the previous answer, each with the
// bulk request that brought it (the provider emits the event as soon as that answer is read).
let changes = [];
const waitingForChange = [];
function onChange(details) {
  if (!(details?.flagsChanged ?? []).includes(flagKey)) {
    return; // a refresh that changed nothing of this flag
  }
  const change = { flagsChanged: details.flagsChanged, http: lastBulk };
  const waiter = waitingForChange.shift();
  if (waiter) {
    waiter(change);
  } else {
    changes.push(change);
  }
}

await ServerFeature.setProviderAndWait(new OFREPProvider({ baseUrl, headers }));
const server = ServerFeature.getClient();
let web = null;

function describe(d) {
  return {
    value: d.value,
    variant: d.variant ?? null,
    reason: d.reason ?? null,
    errorCode: d.errorCode ?? null,
    errorMessage: d.errorMessage ?? null,
    flagMetadata: d.flagMetadata ?? {},
  };
}

function webDetails(flag) {
  if (!web) {
    throw new Error('send web.start first');
  }
  return { ...describe(web.getStringDetails(flag ?? flagKey, 'off')), http: lastBulk };
}

const steps = {
  async server(s) {
    return describe(await server.getStringDetails(s.flag ?? flagKey, 'off', s.context ?? {}));
  },
  async 'web.start'(s) {
    const provider = new OFREPWebProvider({
      baseUrl,
      headers,
      pollInterval: 100,
      cacheMode: 'disabled', // Node has no localStorage
      fetchImplementation: recordingFetch,
    });
    await WebFeature.setProviderAndWait(provider, s.context ?? {});
    const first = lastBulk; // before the first poll can replace it
    web = WebFeature.getClient();
    web.addHandler(ProviderEvents.ConfigurationChanged, onChange);
    return { ...webDetails(s.flag), http: first };
  },
  async 'web.get'(s) {
    return webDetails(s.flag);
  },
  async 'web.context'(s) {
    await WebFeature.setContext(s.context ?? {});
    return webDetails(s.flag);
  },
  async 'web.notModified'() {
    const seen = await new Promise((resolve) => waitingFor304.push(resolve));
    return { http: seen };
  },
  async 'web.changed'(s) {
    const change = changes.shift() ?? (await new Promise((resolve) => waitingForChange.push(resolve)));
    return { ...webDetails(s.flag), ...change };
  },
};

for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (!line.trim()) {
    continue;
  }
  let answer;
  let step = '?';
  try {
    const s = JSON.parse(line);
    step = s.op;
    const run = steps[s.op];
    if (!run) {
      throw new Error(`unknown op ${JSON.stringify(s.op)}`);
    }
    answer = { step, ...(await run(s)) };
  } catch (err) {
    answer = { step, fatal: String(err?.stack ?? err) };
  }
  changes = [];
  process.stdout.write(JSON.stringify(answer) + '\n');
}
await Promise.all([WebFeature.close(), ServerFeature.close()]);
process.exit(0);
