// Serves the mock provider on loopback with node:http, for benchmarks and end-to-end tests:
// node scripts/mock-server.ts [--port N] [--rpm N] [--tpm N] [--burst-seconds N] [--latency-ms N] [--fault F] ...
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";
import {
	createMockProvider,
	type MockOptions,
	type MockProvider,
	mockOptionsFromEnv,
} from "../src/mock/provider.ts";

const DEFAULT_PORT = 8788; // next to wrangler dev's 8787

export interface MockServer {
	url: string;
	provider: MockProvider;
	close(): Promise<void>;
}

function requestOf(incoming: IncomingMessage, origin: string, signal: AbortSignal): Request {
	const headers = new Headers();
	for (let index = 0; index + 1 < incoming.rawHeaders.length; index += 2) {
		headers.append(incoming.rawHeaders[index] ?? "", incoming.rawHeaders[index + 1] ?? "");
	}
	const hasBody = incoming.method !== "GET" && incoming.method !== "HEAD";
	return new Request(new URL(incoming.url ?? "/", origin), {
		method: incoming.method,
		headers,
		body: hasBody ? (Readable.toWeb(incoming) as ReadableStream<Uint8Array>) : null,
		signal,
		// Node needs this to stream a request body; the DOM typings do not know it yet.
		duplex: "half",
	} as RequestInit);
}

async function serve(
	provider: MockProvider,
	origin: string,
	incoming: IncomingMessage,
	outgoing: ServerResponse,
): Promise<void> {
	const clientGone = new AbortController();
	outgoing.on("close", () => {
		if (!outgoing.writableFinished) clientGone.abort(new Error("the client went away"));
	});
	let response: Response;
	try {
		response = await provider.fetch(requestOf(incoming, origin, clientGone.signal));
	} catch {
		// The `reset` fault, or a hung request whose client left: no answer, just a broken connection.
		incoming.socket.destroy();
		return;
	}
	outgoing.statusCode = response.status;
	response.headers.forEach((value, name) => {
		outgoing.setHeader(name, value);
	});
	if (response.body === null) {
		outgoing.end();
		return;
	}
	outgoing.flushHeaders();
	try {
		// Chunk by chunk as the mock produces them; a body that errors breaks the connection.
		await pipeline(
			Readable.fromWeb(response.body as Parameters<typeof Readable.fromWeb>[0]),
			outgoing,
		);
	} catch {
		incoming.socket.destroy();
	}
}

/** Serves a new MockProvider on 127.0.0.1; port 0 picks a free port. */
export async function startMockServer(
	options: Partial<MockOptions> = {},
	port = 0,
): Promise<MockServer> {
	const provider = createMockProvider(options);
	let origin = "";
	const server = createServer((incoming, outgoing) => {
		void serve(provider, origin, incoming, outgoing);
	});
	await new Promise<void>((listening, failed) => {
		server.once("error", failed);
		server.listen(port, "127.0.0.1", listening);
	});
	origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
	return {
		url: origin,
		provider,
		close: () =>
			new Promise<void>((closed, failed) => {
				server.close((error) => (error ? failed(error) : closed()));
				// Streams and hung requests would otherwise keep close() waiting.
				server.closeAllConnections();
			}),
	};
}

async function main(): Promise<void> {
	const { values } = parseArgs({
		options: {
			port: { type: "string" },
			rpm: { type: "string" },
			tpm: { type: "string" },
			"latency-ms": { type: "string" },
			"burst-seconds": { type: "string" },
			"chunk-delay-ms": { type: "string" },
			"completion-tokens": { type: "string" },
			"api-key": { type: "string" },
			fault: { type: "string" },
		},
	});
	// Flags win over MOCK_* environment variables; both go through the same validation.
	const options = {
		...mockOptionsFromEnv(process.env),
		...mockOptionsFromEnv({
			MOCK_RPM: values.rpm,
			MOCK_TPM: values.tpm,
			MOCK_LATENCY_MS: values["latency-ms"],
			MOCK_BURST_SECONDS: values["burst-seconds"],
			MOCK_CHUNK_DELAY_MS: values["chunk-delay-ms"],
			MOCK_COMPLETION_TOKENS: values["completion-tokens"],
			MOCK_API_KEY: values["api-key"],
			MOCK_FAULT: values.fault,
		}),
	};
	const port = Number(values.port ?? DEFAULT_PORT);
	if (!Number.isInteger(port) || port < 0 || port > 65_535) {
		throw new Error(`--port must be a port number, got ${values.port}`);
	}
	const server = await startMockServer(options, port);
	console.log(`mock provider listening on ${server.url}`);
	for (const signal of ["SIGINT", "SIGTERM"] as const) {
		process.once(signal, () => {
			void server.close().then(() => process.exit(0));
		});
	}
}

if (import.meta.filename === resolve(process.argv[1] ?? "")) {
	main().catch((error: unknown) => {
		console.error(error instanceof Error ? error.message : error);
		process.exit(1);
	});
}
