// The typed dataset of billing lines (billing_lines.parquet per invoice, docs/dataset.md): its schema and writer.

export {
  type DatasetArtifact,
  type DatasetInput,
  type DatasetOutcome,
  datasetInputs,
  inputsFingerprint,
  KV_PREFIX,
  PARQUET_CONTENT_TYPE,
  syncBillingLines,
} from './billing-lines.js';
export { COLUMNS, type Column, type ColumnType, DATASET_SCHEMA_VERSION, ROW_KINDS, type RowKind } from './columns.js';
export { DatasetRowError, typedRow } from './rows.js';
