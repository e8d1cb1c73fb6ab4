// Relays a provider's SSE bytes to the client unchanged while eventsource-parser reads each event
// for usage; optionally hides events tollbooth itself asked for (an injected usage chunk).

import { createParser } from "eventsource-parser";
import { parseJson } from "./estimate.ts";
import type { StreamMeter, Usage } from "./types.ts";

/** What a provider does with the events of its stream. */
export interface SseUsageReader {
	/** Sees each event's JSON data; returns true when the client must not see this event. */
	observe(data: unknown): boolean;
	usage(): Usage | undefined;
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * With `mayHideEvents` false every chunk is passed on the moment it arrives. With it true each
 * event is held only until its terminating blank line, then passed on whole or dropped; bytes
 * are framed on CR, LF and CRLF line ends, which never occur inside a multi-byte character.
 */
export function meterSse(reader: SseUsageReader, mayHideEvents: boolean): StreamMeter {
	let hideEvent = false;
	const parser = createParser({
		onEvent(message) {
			// Undefined for "[DONE]", a doc elision, a torn event: nothing to read.
			const data = parseJson(message.data);
			if (data !== undefined && reader.observe(data)) hideEvent = true;
		},
	});
	const decoder = new TextDecoder();
	/** Feeds bytes to the parser; returns true if an event among them must be hidden. */
	const read = (bytes: Uint8Array): boolean => {
		hideEvent = false;
		parser.feed(decoder.decode(bytes, { stream: true }));
		return hideEvent;
	};
	// A stream may end without the final blank line (the API reference's Responses example does):
	// close the last event for metering only, the client gets exactly what the provider sent.
	const readEnd = (): boolean => {
		hideEvent = false;
		parser.feed(`${decoder.decode()}\n\n`);
		return hideEvent;
	};

	if (!mayHideEvents) {
		const stream = new TransformStream<Uint8Array, Uint8Array>({
			transform(chunk, controller) {
				controller.enqueue(chunk);
				read(chunk);
			},
			flush() {
				readEnd();
			},
		});
		return { stream, usage: () => reader.usage() };
	}

	let held: Uint8Array[] = []; // bytes of the event not yet complete
	let atLineStart = true;
	// The last chunk ended with a CR; an LF opening the next chunk completes that CRLF and belongs
	// with the line, or with the event the CR completed (passed on or hidden with it).
	let lastChunkEndedWithCr: "line" | "passed-event" | "hidden-event" | undefined;

	const takeHeld = (tail: Uint8Array): Uint8Array => {
		const parts = [...held, tail];
		held = [];
		const bytes = new Uint8Array(parts.reduce((total, part) => total + part.byteLength, 0));
		let offset = 0;
		for (const part of parts) {
			bytes.set(part, offset);
			offset += part.byteLength;
		}
		return bytes;
	};

	const stream = new TransformStream<Uint8Array, Uint8Array>({
		transform(chunk, controller) {
			if (chunk.byteLength === 0) return;
			let eventStart = 0;
			let index = 0;
			if (lastChunkEndedWithCr !== undefined && chunk[0] === LF) {
				index = 1;
				if (lastChunkEndedWithCr !== "line") eventStart = 1;
				if (lastChunkEndedWithCr === "passed-event") controller.enqueue(chunk.subarray(0, 1));
			}
			lastChunkEndedWithCr = undefined;
			for (; index < chunk.length; index++) {
				const byte = chunk[index];
				if (byte !== LF && byte !== CR) {
					atLineStart = false;
					continue;
				}
				if (byte === CR) {
					if (index + 1 === chunk.length) lastChunkEndedWithCr = "line";
					else if (chunk[index + 1] === LF) index++;
				}
				if (!atLineStart) {
					atLineStart = true;
					continue;
				}
				// A blank line: the event is complete.
				const event = takeHeld(chunk.subarray(eventStart, index + 1));
				const hidden = read(event);
				if (!hidden) controller.enqueue(event);
				if (lastChunkEndedWithCr) lastChunkEndedWithCr = hidden ? "hidden-event" : "passed-event";
				eventStart = index + 1;
			}
			if (eventStart < chunk.length) held.push(chunk.slice(eventStart));
		},
		flush(controller) {
			const rest = takeHeld(new Uint8Array(0));
			const hidden = read(rest);
			const hiddenAtEnd = readEnd();
			if (rest.byteLength > 0 && !hidden && !hiddenAtEnd) controller.enqueue(rest);
		},
	});
	return { stream, usage: () => reader.usage() };
}
