// The workflow bundle's entry point: the worker loads this file through `workflowsPath`.
export { taskWorkflow } from './task-workflow.js';
export { bulkOperationWorkflow } from './bulk-operation-workflow.js';
export { flowLimiterWorkflow } from './flow-limiter.js';
