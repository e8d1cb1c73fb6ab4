// Drives a StreamMeter in tests: feeds chunks through it and collects what the client would get.

import type { StreamMeter } from "../../src/providers/types.ts";
import { seededRandom as random } from "../support/seeded-random.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function bytesOf(text: string): Uint8Array {
	return encoder.encode(text);
}

export function textOf(chunks: readonly Uint8Array[]): string {
	return decoder.decode(concat(chunks));
}

export function concat(chunks: readonly Uint8Array[]): Uint8Array {
	const bytes = new Uint8Array(chunks.reduce((total, chunk) => total + chunk.byteLength, 0));
	let offset = 0;
	for (const chunk of chunks) {
		bytes.set(chunk, offset);
		offset += chunk.byteLength;
	}
	return bytes;
}

/** `bytes` cut at random places into chunks of 1 to `maxChunkBytes` bytes. */
export function randomSplit(bytes: Uint8Array, seed: number, maxChunkBytes = 64): Uint8Array[] {
	const next = random(seed);
	const chunks: Uint8Array[] = [];
	for (let offset = 0; offset < bytes.byteLength; ) {
		const size = 1 + Math.floor(next() * maxChunkBytes);
		chunks.push(bytes.slice(offset, offset + size));
		offset += size;
	}
	return chunks;
}

export function oneByteChunks(bytes: Uint8Array): Uint8Array[] {
	return Array.from(bytes, (byte) => Uint8Array.of(byte));
}

/** The chunk splits every stream test runs: whole, 1-byte, and several random ones. */
export function splitsOf(text: string): { name: string; chunks: Uint8Array[] }[] {
	const bytes = bytesOf(text);
	return [
		{ name: "one chunk", chunks: [bytes] },
		{ name: "1-byte chunks", chunks: oneByteChunks(bytes) },
		...[1, 2, 3].map((seed) => ({
			name: `random split seed ${seed}`,
			chunks: randomSplit(bytes, seed),
		})),
	];
}

/** Pipes `chunks` through the meter to the end and returns the chunks the client received. */
export async function runMeter(
	meter: StreamMeter,
	chunks: readonly Uint8Array[],
): Promise<Uint8Array[]> {
	const source = new ReadableStream<Uint8Array>({
		start(controller) {
			for (const chunk of chunks) controller.enqueue(chunk);
			controller.close();
		},
	});
	const received: Uint8Array[] = [];
	await source.pipeThrough(meter.stream).pipeTo(
		new WritableStream({
			write(chunk) {
				received.push(chunk);
			},
		}),
	);
	return received;
}

/** Serialises events as a provider stream would: `event:` line (if named) then `data:`. */
export function sseOf(events: readonly { event?: string; data: unknown }[]): string {
	return events
		.map(
			({ event, data }) => `${event ? `event: ${event}\n` : ""}data: ${JSON.stringify(data)}\n\n`,
		)
		.join("");
}
