// Timed HTTP requests from Node over keep-alive connections (node:http, the lightest client without
// a package), for latency and throughput scenarios, and a closed loop of N connections.
import { Agent, request as httpRequest } from "node:http";
import { seededRandom } from "./random.ts";

/** One kind of request a scenario sends; `name` says which variant it measures. */
export interface Target {
	name: string;
	url: URL;
	method: "GET" | "POST";
	headers: Record<string, string>;
	body?: string;
}

/** Times in ms since the request was started. */
export interface Timing {
	status: number;
	headersMs: number;
	/** The first body chunk (the headers' time when the body is empty). */
	firstByteMs: number;
	totalMs: number;
	bytes: number;
	/** When asked for: the arrival time of each body chunk. */
	chunkMs?: number[];
}

export class HttpClient {
	readonly #agent: Agent;

	/** At most `connections` sockets, kept open between requests. */
	constructor(connections: number) {
		this.#agent = new Agent({
			keepAlive: true,
			maxSockets: connections,
			maxFreeSockets: connections,
		});
	}

	/** Sends `target` and reads its whole body; rejects on a network error. */
	send(target: Target, options: { chunkTimes?: boolean } = {}): Promise<Timing> {
		return new Promise((done, failed) => {
			const startedMs = performance.now();
			const outgoing = httpRequest(
				target.url,
				{ method: target.method, headers: target.headers, agent: this.#agent },
				(incoming) => {
					const headersMs = performance.now() - startedMs;
					const chunkMs: number[] = [];
					let bytes = 0;
					incoming.on("data", (chunk: Buffer) => {
						if (bytes === 0 || options.chunkTimes) chunkMs.push(performance.now() - startedMs);
						bytes += chunk.length;
					});
					incoming.on("end", () => {
						const timing: Timing = {
							status: incoming.statusCode ?? 0,
							headersMs,
							firstByteMs: chunkMs[0] ?? headersMs,
							totalMs: performance.now() - startedMs,
							bytes,
						};
						if (options.chunkTimes) timing.chunkMs = chunkMs;
						done(timing);
					});
					incoming.on("error", failed);
				},
			);
			outgoing.on("error", failed);
			outgoing.end(target.body);
		});
	}

	close(): void {
		this.#agent.destroy();
	}
}

export interface ClosedLoopOptions {
	client: HttpClient;
	connections: number;
	durationMs: number;
	/** The request the connection sends next; `sequence` counts its own requests from 0. */
	next(connection: number, sequence: number): Target;
	record(target: Target, timing: Timing): void;
}

export interface ClosedLoopResult {
	elapsedMs: number;
	completed: number;
	failed: number;
	/** The first few network errors, for diagnosis. */
	errors: string[];
}

/**
 * `connections` loops, each sending its next request as soon as the previous one has ended, until
 * durationMs has passed; the requests under way then are finished and counted.
 */
export async function runClosedLoop(options: ClosedLoopOptions): Promise<ClosedLoopResult> {
	const startedMs = performance.now();
	const result: ClosedLoopResult = { elapsedMs: 0, completed: 0, failed: 0, errors: [] };
	const loop = async (connection: number) => {
		for (let sequence = 0; performance.now() - startedMs < options.durationMs; sequence++) {
			const target = options.next(connection, sequence);
			try {
				options.record(target, await options.client.send(target));
				result.completed += 1;
			} catch (error) {
				result.failed += 1;
				if (result.errors.length < 5) result.errors.push(`${target.name}: ${String(error)}`);
			}
		}
	};
	await Promise.all(Array.from({ length: options.connections }, (_, index) => loop(index)));
	result.elapsedMs = performance.now() - startedMs;
	return result;
}

/** Each connection goes through every target once per round, in an order shuffled per round. */
export function interleaved(
	targets: readonly Target[],
	connections: number,
	seed = 1,
): (connection: number, sequence: number) => Target {
	const random = seededRandom(seed);
	const orders: Target[][] = Array.from({ length: connections }, () => []);
	return (connection, sequence) => {
		const order = orders[connection] ?? [];
		const position = sequence % targets.length;
		if (position === 0) {
			order.length = 0;
			order.push(...targets);
			for (let index = order.length - 1; index > 0; index--) {
				const other = Math.floor(random() * (index + 1));
				[order[index], order[other]] = [order[other] as Target, order[index] as Target];
			}
			orders[connection] = order;
		}
		return order[position] as Target;
	};
}
