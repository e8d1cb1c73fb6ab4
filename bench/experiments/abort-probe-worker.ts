// Experiment Worker for bench/experiments/abort-signal.ts: how workerd under wrangler dev reacts to a
// caller's leaving and to aborting a subrequest. Every event is reported to PROBE_ORIGIN (loopback).
import tollbooth, { Pool } from "tollbooth-worker";

export { Pool };

interface ProbeEnv {
	PROBE_ORIGIN: string;
}

export default {
	async fetch(
		request: Request,
		env: ProbeEnv,
		ctx: { waitUntil(promise: Promise<unknown>): void },
	): Promise<Response> {
		const url = new URL(request.url);
		if (!url.pathname.startsWith("/probe/")) return tollbooth.fetch(request, env as never, ctx);
		const id = url.searchParams.get("id") ?? "?";
		const report = (event: string) =>
			ctx.waitUntil(
				fetch(`${env.PROBE_ORIGIN}/event?id=${id}&e=${encodeURIComponent(event)}`).then(
					(r) => r.body?.cancel(),
					() => {},
				),
			);
		request.signal.addEventListener("abort", () => report("request.signal fired"));
		const probe = url.pathname.slice("/probe/".length);
		const upstream = (path: string) => `${env.PROBE_ORIGIN}/${path}?id=${id}`;
		try {
			if (probe === "wait") {
				// Pending I/O that the caller's signal does not cancel (as an RPC to the Pool would be).
				const held = await fetch(upstream("slow"));
				await held.text();
				report(`continued after caller left; signal.aborted=${request.signal.aborted}`);
				return new Response("done");
			}
			if (probe === "fetch-signal") {
				// The caller's own signal on a subrequest still waiting for headers.
				const answer = await fetch(upstream("slow"), { signal: request.signal });
				await answer.text();
				return new Response("done");
			}
			if (probe === "body-signal") {
				// The caller's signal on a subrequest whose headers came and whose body is slow.
				const answer = await fetch(upstream("slowbody"), { signal: request.signal });
				await answer.text();
				report("body read in full despite the signal");
				return new Response("done");
			}
			if (probe === "own-abort-headers" || probe === "own-abort-body") {
				// No caller involved: our own AbortController, 300 ms after sending.
				const controller = new AbortController();
				setTimeout(() => controller.abort(), 300);
				const path = probe === "own-abort-headers" ? "slow" : "slowbody";
				try {
					const answer = await fetch(upstream(path), { signal: controller.signal });
					report("headers came");
					await answer.text();
					report("body read in full despite the abort");
				} catch (error) {
					report(`fetch/text rejected: ${(error as Error).name}`);
				}
				return new Response("done");
			}
			if (probe === "reader-cancel") {
				const answer = await fetch(upstream("slowbody"));
				const reader = answer.body?.getReader();
				setTimeout(() => reader?.cancel().then(() => report("reader.cancel resolved")), 300);
				try {
					while (!(await reader?.read())?.done) {}
				} catch {}
				return new Response("done");
			}
		} catch (error) {
			report(`threw ${(error as Error).name}: ${(error as Error).message}`);
			throw error;
		}
		return new Response("unknown probe", { status: 404 });
	},
};
