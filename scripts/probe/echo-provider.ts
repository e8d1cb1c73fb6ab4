// A loopback stand-in for the provider that records what reaches it and answers as the request's
// `model` asks: a plain answer, or an error (any status) or a stream error that quotes the key.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface Received {
	method: string;
	path: string;
	headers: IncomingMessage["headers"];
	body: string;
}

export interface EchoProvider {
	origin: string;
	received: Received[];
	close(): Promise<void>;
}

/** `model: "quote-<status>"` answers that status; "stream-error" a stream whose error event quotes. */
function answer(request: Received, apiKey: string, response: ServerResponse): void {
	let model = "";
	try {
		model = String((JSON.parse(request.body) as { model?: unknown }).model ?? "");
	} catch {
		// Not JSON: a plain answer.
	}
	const anthropic = request.path.includes("/messages");
	const quote = `Invalid request for key ${apiKey} (sk-proj-${apiKey.slice(-24)}); key=${apiKey}`;
	const quoted = model.match(/^quote-(\d{3})$/);
	if (quoted) {
		const body = anthropic
			? { type: "error", error: { type: "invalid_request_error", message: quote } }
			: { error: { message: quote, type: "invalid_request_error", param: null, code: null } };
		response.writeHead(Number(quoted[1]), {
			"content-type": "application/json",
			"x-request-id": `req_${apiKey}`,
			"x-echo-key": apiKey,
			"set-cookie": `session=${apiKey}`,
			"openai-organization": "org-operator-private",
			"x-should-retry": "false",
		});
		response.end(JSON.stringify(body));
		return;
	}
	if (model === "stream-error") {
		response.writeHead(200, { "content-type": "text/event-stream" });
		const chunk = { id: "c1", object: "chat.completion.chunk", choices: [{ index: 0, delta: {} }] };
		const error = anthropic
			? `event: error\ndata: ${JSON.stringify({ type: "error", error: { type: "api_error", message: quote } })}\n\n`
			: `data: ${JSON.stringify({ error: { message: quote, type: "server_error" } })}\n\n`;
		const half = Math.floor(error.length / 2);
		response.write(`data: ${JSON.stringify(chunk)}\n\n${error.slice(0, half)}`);
		setTimeout(() => response.end(error.slice(half)), 20);
		return;
	}
	response.writeHead(200, { "content-type": "application/json", "x-request-id": "req_echo" });
	response.end(
		JSON.stringify(
			anthropic
				? {
						id: "msg_echo",
						type: "message",
						role: "assistant",
						content: [{ type: "text", text: "echo" }],
						usage: { input_tokens: 5, output_tokens: 1 },
					}
				: {
						id: "chatcmpl-echo",
						object: "chat.completion",
						choices: [{ index: 0, message: { role: "assistant", content: "echo" } }],
						usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
					},
		),
	);
}

export function startEchoProvider(apiKey: string): Promise<EchoProvider> {
	const received: Received[] = [];
	const server = createServer((incoming, response) => {
		const chunks: Buffer[] = [];
		incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
		incoming.on("end", () => {
			const request = {
				method: incoming.method ?? "",
				path: incoming.url ?? "",
				headers: incoming.headers,
				body: Buffer.concat(chunks).toString("utf8"),
			};
			received.push(request);
			answer(request, apiKey, response);
		});
	});
	return new Promise((started) => {
		server.listen(0, "127.0.0.1", () => {
			const { port } = server.address() as AddressInfo;
			started({
				origin: `http://127.0.0.1:${port}`,
				received,
				close: () => new Promise((closed) => server.close(() => closed())),
			});
		});
	});
}
