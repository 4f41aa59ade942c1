// The storage layer's public surface: clients, blob layout, NDJSON block writer, ledger and queue messages.
export * from './clients.js';
export * from './layout.js';
export * from './ledger.js';
export * from './ndjson-writer.js';
export * from './queues.js';
