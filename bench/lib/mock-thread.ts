// The Node mock provider on a thread of its own, so it has its own event loop: the load generator
// on the main thread and the provider do not take turns, and each can use a core.
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { startMockServer } from "../../scripts/mock-server.ts";
import type { MockOptions } from "../../src/mock/provider.ts";

export interface MockThread {
	url: string;
	close(): Promise<void>;
}

export function startMockThread(options: Partial<MockOptions>): Promise<MockThread> {
	const worker = new Worker(new URL(import.meta.url), { workerData: options });
	return new Promise((started, failed) => {
		worker.once("error", failed);
		worker.once("message", (url: string) => {
			worker.off("error", failed);
			started({ url, close: () => worker.terminate().then(() => undefined) });
		});
	});
}

if (!isMainThread) {
	const server = await startMockServer(workerData as Partial<MockOptions>);
	parentPort?.postMessage(server.url);
}
