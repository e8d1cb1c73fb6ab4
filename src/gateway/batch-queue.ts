// A batch line as a queue message, and sending a batch's lines into the queue in as few calls as
// the Queues limits allow (100 messages and 256 KB per sendBatch).
import type { BatchLine } from "../providers/batch-input.ts";

export interface LineMessage {
	batchId: string;
	pool: string;
	tenant: string;
	customId: string;
	/** The provider path after /v1, e.g. "/chat/completions". */
	path: string;
	body: Record<string, unknown>;
	/** Failed sends in earlier messages of this line (a deferred line is sent again as a new one). */
	failedAttempts?: number;
	/** Times the line was sent back to wait for spare capacity: each wait is longer. */
	deferrals?: number;
}

const MAX_MESSAGES_PER_SEND = 100;
/** Under the 256 KB a sendBatch carries, leaving room for each message's own overhead. */
const MAX_BYTES_PER_SEND = 200_000;

export async function enqueueLines(
	queue: Queue,
	owner: { batchId: string; pool: string; tenant: string },
	lines: BatchLine[],
): Promise<void> {
	await sendLineMessages(
		queue,
		lines.map((line) => ({
			body: { ...owner, customId: line.customId, path: line.path, body: line.body },
			contentType: "json",
		})),
	);
}

/** Sends line messages in as few sendBatch calls as the Queues limits allow. */
export async function sendLineMessages(
	queue: Queue,
	messages: MessageSendRequest<LineMessage>[],
): Promise<void> {
	let chunk: MessageSendRequest<LineMessage>[] = [];
	let bytes = 0;
	for (const message of messages) {
		const size = JSON.stringify(message.body).length;
		if (
			chunk.length === MAX_MESSAGES_PER_SEND ||
			(chunk.length > 0 && bytes + size > MAX_BYTES_PER_SEND)
		) {
			await queue.sendBatch(chunk);
			chunk = [];
			bytes = 0;
		}
		chunk.push(message);
		bytes += size;
	}
	if (chunk.length > 0) await queue.sendBatch(chunk);
}
