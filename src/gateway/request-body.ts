// Reads a request body once, refusing it as soon as it passes the configured maximum.
import { GatewayError } from "./errors.ts";

function tooLarge(maxBytes: number): GatewayError {
	return new GatewayError(
		413,
		`The request body is larger than this gateway accepts (${maxBytes} bytes).`,
		"body_too_large",
	);
}

export async function readBody(
	request: Request,
	maxBytes: number,
): Promise<ArrayBuffer | undefined> {
	if (!request.body) return undefined;
	if (Number(request.headers.get("content-length") ?? 0) > maxBytes) throw tooLarge(maxBytes);
	const reader = request.body.getReader();
	const chunks: Uint8Array[] = [];
	let size = 0;
	for (;;) {
		const { done, value } = await reader.read();
		if (done) break;
		size += value.byteLength;
		if (size > maxBytes) {
			await reader.cancel();
			throw tooLarge(maxBytes);
		}
		chunks.push(value);
	}
	const body = new Uint8Array(size);
	let offset = 0;
	for (const chunk of chunks) {
		body.set(chunk, offset);
		offset += chunk.byteLength;
	}
	return body.buffer;
}
