// Experiment: in workerd under wrangler dev, does request.signal fire when the caller leaves, and
// does aborting a subrequest (or cancelling its body) close the upstream connection promptly?
// node bench/experiments/abort-signal.ts — prints a timeline per probe, times in ms.
import { createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { benchConfig } from "../lib/bench-gateway.ts";
import { directOrigin } from "../lib/direct-origin.ts";
import { startWranglerDev } from "../lib/wrangler-dev.ts";

const events: { id: string; atMs: number; what: string }[] = [];
const log = (id: string, what: string) => events.push({ id, atMs: performance.now(), what });

const server = createServer((req, res) => {
	const url = new URL(req.url ?? "/", "http://x");
	const id = url.searchParams.get("id") ?? "?";
	if (url.pathname === "/event") {
		log(id, `worker: ${url.searchParams.get("e")}`);
		res.end("ok");
		return;
	}
	log(id, `upstream ${url.pathname} received`);
	res.once("close", () =>
		log(
			id,
			`upstream ${url.pathname} connection ${res.writableFinished ? "finished" : "CLOSED early"}`,
		),
	);
	if (url.pathname === "/slow") {
		setTimeout(() => res.destroyed || res.end("late"), 3000);
	} else {
		res.writeHead(200, { "content-type": "text/plain" });
		res.write("first part ");
		setTimeout(() => res.destroyed || res.end("rest"), 3000);
	}
});
await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const dev = await startWranglerDev({
	config: benchConfig([
		{
			name: "openai",
			provider: "openai",
			baseUrl: `${origin}/v1`,
			limits: { requestsPerMinute: 100, tokensPerMinute: 100000, maxConcurrent: 1 },
		},
	]),
	vars: { PROBE_ORIGIN: origin, BENCH_PROVIDER_KEY: "k", MOCK_PROVIDER: "off" },
	entry: "bench/experiments/abort-probe-worker.ts",
});
/** ABORT_PROBE_DIRECT=1: skip wrangler's ProxyWorker and call the Worker's own server. */
const workerOrigin = process.env.ABORT_PROBE_DIRECT ? await directOrigin(dev) : dev.origin;
console.log(`probing ${workerOrigin} (wrangler dev at ${dev.origin})`);

/** Calls a probe; the caller leaves after `leaveAfterMs` (or waits for the answer). */
function probe(name: string, leaveAfterMs?: number): Promise<void> {
	const id = name;
	return new Promise((done) => {
		const outgoing = httpRequest(
			`${dev.origin}/probe/${name}?id=${id}`,
			{ agent: false },
			(res) => {
				res.resume();
				res.on("end", () => {
					log(id, `caller got ${res.statusCode}`);
					done();
				});
			},
		);
		outgoing.on("error", () => done());
		outgoing.end();
		log(id, "caller sent");
		if (leaveAfterMs !== undefined)
			setTimeout(() => {
				log(id, "caller LEFT (socket destroyed)");
				outgoing.destroy();
				done();
			}, leaveAfterMs);
	});
}

try {
	for (const [name, leave] of [
		["wait", 300],
		["fetch-signal", 300],
		["body-signal", 300],
		["own-abort-headers", undefined],
		["own-abort-body", undefined],
		["reader-cancel", undefined],
	] as const) {
		await probe(name, leave);
		await new Promise((wait) => setTimeout(wait, 4500));
		const mine = events.filter((event) => event.id === name);
		const start = mine[0]?.atMs ?? 0;
		console.log(`\n${name}`);
		for (const event of mine)
			console.log(`  ${String(Math.round(event.atMs - start)).padStart(5)} ms  ${event.what}`);
	}
} finally {
	await dev.stop();
	server.close();
}
