// Serves the mock provider on loopback with @hono/node-server, for benchmarks and end-to-end tests:
// node scripts/mock-server.ts [--port N] [--rpm N] [--tpm N] [--burst-seconds N] [--latency-ms N] [--fault F] ...
import type { Socket } from "node:net";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { type Http2Bindings, type HttpBindings, serve } from "@hono/node-server";
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

/** The body as the mock produces it; if it errors mid-way, the connection breaks, as a provider's would. */
function breakingOnError(
	body: ReadableStream<Uint8Array>,
	socket: Socket,
): ReadableStream<Uint8Array> {
	const reader = body.getReader();
	return new ReadableStream({
		async pull(controller) {
			try {
				const chunk = await reader.read();
				if (chunk.done) controller.close();
				else controller.enqueue(chunk.value);
			} catch {
				// What was sent reaches the client, then the connection ends without the stream's end.
				socket.end();
				await new Promise(() => {});
			}
		},
		cancel: (reason) => reader.cancel(reason),
	});
}

/** Serves a new MockProvider on 127.0.0.1; port 0 picks a free port. */
export async function startMockServer(
	options: Partial<MockOptions> = {},
	port = 0,
): Promise<MockServer> {
	const provider = createMockProvider(options);
	const answer = async (
		request: Request,
		{ incoming }: HttpBindings | Http2Bindings,
	): Promise<Response> => {
		try {
			const response = await provider.fetch(request);
			if (response.body === null) return response;
			// Chunked: node-server then sends the headers at once and each chunk as it comes.
			const headers = new Headers(response.headers);
			if (!headers.has("content-length")) headers.set("transfer-encoding", "chunked");
			return new Response(breakingOnError(response.body, incoming.socket), {
				status: response.status,
				headers,
			});
		} catch {
			// The `reset` fault, or a hung request whose client left: no answer, just a broken connection.
			incoming.socket.destroy();
			return new Response(null, { status: 500 });
		}
	};
	const { server, address } = await new Promise<{
		server: ReturnType<typeof serve>;
		address: { port: number };
	}>((listening, failed) => {
		const started = serve(
			// The process's own Request and Response stay as they are (benchmarks share it).
			{ fetch: answer, port, hostname: "127.0.0.1", overrideGlobalObjects: false },
			(info) => listening({ server: started, address: info }),
		);
		started.once("error", failed);
	});
	return {
		url: `http://127.0.0.1:${address.port}`,
		provider,
		close: () =>
			new Promise<void>((closed, failed) => {
				server.close((error) => (error ? failed(error) : closed()));
				// Streams and hung requests would otherwise keep close() waiting.
				if ("closeAllConnections" in server) server.closeAllConnections();
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
