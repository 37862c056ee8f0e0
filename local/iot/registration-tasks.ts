import { randomUUID } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as z from "zod";
import type { S3Emulator } from "../s3/s3-emulator.ts";
import { IotServiceError, invalidRequest, notFound } from "./errors.ts";
import type { IotState } from "./iot-state.ts";
import { type EmulatorContext, epochSeconds, type OperationRequest, type Route } from "./operation.ts";
import { runRegisterThing } from "./register-thing.ts";
import { parseInput, queryEnum, queryInteger } from "./validation.ts";

/**
 * Bulk registration (https://docs.aws.amazon.com/iot/latest/developerguide/bulk-provisioning.html):
 * StartThingRegistrationTask, DescribeThingRegistrationTask, ListThingRegistrationTasks,
 * ListThingRegistrationTaskReports and StopThingRegistrationTask, with the request and response
 * shapes of the API reference:
 * - https://docs.aws.amazon.com/iot/latest/apireference/API_StartThingRegistrationTask.html
 *   (POST /thing-registration-tasks {templateBody, inputFileBucket, inputFileKey, roleArn} → {taskId})
 * - https://docs.aws.amazon.com/iot/latest/apireference/API_DescribeThingRegistrationTask.html
 *   (status InProgress | Completed | Failed | Cancelled | Cancelling, successCount, failureCount,
 *   percentageProgress 0-100, message, the input echoed, epoch-second dates)
 * - https://docs.aws.amazon.com/iot/latest/apireference/API_ListThingRegistrationTaskReports.html
 *   (reportType ERRORS | RESULTS, maxResults 1-250 → {resourceLinks, reportType, nextToken})
 * - ListThingRegistrationTasks (status, maxResults, nextToken → {taskIds, nextToken}) and
 *   StopThingRegistrationTask (PUT /thing-registration-tasks/{taskId}/cancel), as
 *   @aws-sdk/client-iot's model routes them.
 *
 * The input file is newline-delimited JSON, one object of template parameters per line (the
 * developer guide's example); each line runs through the same code as RegisterThing
 * (`runRegisterThing`: the template engine, then the plan applied to the registry). Only one task
 * runs at a time per account ("Only one bulk registration operation task can run at a time (per
 * account)", the developer guide's note); a second StartThingRegistrationTask meanwhile is an
 * InvalidRequestException.
 *
 * Reports: AWS's `resourceLinks` are presigned links to report objects; the API reference does not
 * publish the line layout of those objects. The emulator writes JSON lines
 * `{"lineNumber", "offset", "response": {"CertificatePem", "ResourceArns"}}` (RESULTS) and
 * `{"lineNumber", "offset", "errorCode", "errorMessage"}` (ERRORS), at most 1,000 lines per object,
 * into the input bucket under `thing-registration-tasks/{taskId}/`, and links them presigned
 * (`onramp bulk provision` identifies each result by the certificate's public key, the CSR's,
 * and each error by its line number). Emulator choices where AWS documents
 * nothing: an unreadable input object or an invalid template body is refused at start
 * (InvalidRequestException); a task interrupted by a restart of the emulator is Failed.
 */

const TASK_ID_MAX = 40;
const REPORT_LINES_PER_OBJECT = 1000;
/** Lines processed between progress updates, durability points and yields to the event loop. */
const BATCH = 100;
const REPORT_LINK_SECONDS = 3600;

type TaskStatus = "InProgress" | "Completed" | "Failed" | "Cancelled" | "Cancelling";
type ReportType = "RESULTS" | "ERRORS";

type TaskRecord = {
  taskId: string;
  creationDate: number;
  lastModifiedDate: number;
  templateBody: string;
  inputFileBucket: string;
  inputFileKey: string;
  roleArn: string;
  status: TaskStatus;
  message?: string;
  successCount: number;
  failureCount: number;
  percentageProgress: number;
  reports: Record<ReportType, string[]>;
};

const startBody = z.object({
  templateBody: z.string().max(10240),
  inputFileBucket: z
    .string()
    .min(3)
    .max(256)
    .regex(/^[a-zA-Z0-9._-]+$/),
  inputFileKey: z
    .string()
    .min(1)
    .max(1024)
    .regex(/^[a-zA-Z0-9!_.*'()\-/]+$/),
  roleArn: z.string().min(20).max(2048),
});

const taskIdSchema = z.string().min(1).max(TASK_ID_MAX);

const managers = new WeakMap<IotState, RegistrationTasks>();

/**
 * Connects an emulator's registration tasks to the S3 holding input files and reports; tasks are
 * kept in `<dataDir>/registration-tasks.json` (0600) when a data folder is given.
 */
export function connectRegistrationTasks(
  emulator: { state: IotState; context: EmulatorContext },
  options: { s3: S3Emulator; dataDir?: string },
): RegistrationTasks {
  const tasks = new RegistrationTasks(emulator.context, options.s3, options.dataDir);
  managers.set(emulator.state, tasks);
  return tasks;
}

/** The tasks of one emulator. */
export class RegistrationTasks {
  private readonly tasks = new Map<string, TaskRecord>();
  private readonly cancel = new Set<string>();
  private readonly running = new Map<string, Promise<void>>();
  private readonly file: string | undefined;

  constructor(
    private readonly base: EmulatorContext,
    private readonly s3: S3Emulator,
    dataDir?: string,
  ) {
    this.file = dataDir ? join(dataDir, "registration-tasks.json") : undefined;
    if (this.file && existsSync(this.file)) {
      const saved = JSON.parse(readFileSync(this.file, "utf8")) as TaskRecord[];
      for (const task of saved) {
        if (task.status === "InProgress" || task.status === "Cancelling") {
          task.status = "Failed";
          task.message = "The task was interrupted: the emulator stopped while it ran.";
          task.lastModifiedDate = base.now();
        }
        this.tasks.set(task.taskId, task);
      }
      this.save();
    }
  }

  /** Resolves when every task started so far has finished (tests, shutdown). */
  async idle(): Promise<void> {
    await Promise.all([...this.running.values()]);
  }

  start(context: EmulatorContext, request: OperationRequest) {
    const body = parseInput(startBody, request.body ?? {});
    for (const task of this.tasks.values()) {
      if (task.status === "InProgress" || task.status === "Cancelling") {
        throw invalidRequest(
          `Task ${task.taskId} is still running: only one bulk registration task can run at a time per account.`,
        );
      }
    }
    try {
      const parsed: unknown = JSON.parse(body.templateBody);
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
        throw new Error("not an object");
    } catch {
      throw invalidRequest("The templateBody is not a JSON object.");
    }
    if (!this.s3.hasBucket(body.inputFileBucket)) {
      throw invalidRequest(`The bucket ${body.inputFileBucket} does not exist.`);
    }
    const input = this.s3.getObject(body.inputFileBucket, body.inputFileKey);
    if (!input) throw invalidRequest(`s3://${body.inputFileBucket}/${body.inputFileKey} does not exist.`);
    const now = context.now();
    const task: TaskRecord = {
      taskId: randomUUID(),
      creationDate: now,
      lastModifiedDate: now,
      ...body,
      status: "InProgress",
      successCount: 0,
      failureCount: 0,
      percentageProgress: 0,
      reports: { RESULTS: [], ERRORS: [] },
    };
    this.tasks.set(task.taskId, task);
    this.save();
    const run = this.run(context, task, input.body)
      .catch((error: unknown) => {
        context.logger.error("iot emulator: registration task failed", {
          taskId: task.taskId,
          error: String(error),
        });
        task.status = "Failed";
        task.message = "An unexpected error stopped the task.";
        task.lastModifiedDate = context.now();
        this.save();
      })
      .finally(() => this.running.delete(task.taskId));
    this.running.set(task.taskId, run);
    return { taskId: task.taskId };
  }

  describe(request: OperationRequest) {
    const task = this.task(request);
    return {
      taskId: task.taskId,
      creationDate: epochSeconds(task.creationDate),
      lastModifiedDate: epochSeconds(task.lastModifiedDate),
      templateBody: task.templateBody,
      inputFileBucket: task.inputFileBucket,
      inputFileKey: task.inputFileKey,
      roleArn: task.roleArn,
      status: task.status,
      ...(task.message !== undefined ? { message: task.message } : {}),
      successCount: task.successCount,
      failureCount: task.failureCount,
      percentageProgress: task.percentageProgress,
    };
  }

  list(request: OperationRequest) {
    const status = queryEnum(request.query, "status", [
      "InProgress",
      "Completed",
      "Failed",
      "Cancelled",
      "Cancelling",
    ] as const);
    const ids = [...this.tasks.values()]
      .filter((t) => !status || t.status === status)
      .sort((a, b) => b.creationDate - a.creationDate || (a.taskId < b.taskId ? -1 : 1))
      .map((t) => t.taskId);
    const page = pageOf(ids, request.query);
    return { taskIds: page.items, ...(page.nextToken ? { nextToken: page.nextToken } : {}) };
  }

  reports(request: OperationRequest) {
    const task = this.task(request);
    const reportType = queryEnum(request.query, "reportType", ["ERRORS", "RESULTS"] as const);
    if (!reportType) throw invalidRequest("reportType is required (ERRORS or RESULTS).");
    const page = pageOf(task.reports[reportType], request.query);
    return {
      resourceLinks: page.items.map((key) =>
        this.s3.presignGet(task.inputFileBucket, key, REPORT_LINK_SECONDS),
      ),
      reportType,
      ...(page.nextToken ? { nextToken: page.nextToken } : {}),
    };
  }

  stop(request: OperationRequest) {
    const task = this.task(request);
    if (task.status !== "InProgress" && task.status !== "Cancelling") {
      throw invalidRequest(`Task ${task.taskId} is ${task.status}: only a task in progress can be stopped.`);
    }
    task.status = "Cancelling";
    task.lastModifiedDate = this.base.now();
    this.cancel.add(task.taskId);
    this.save();
    return {};
  }

  private task(request: OperationRequest): TaskRecord {
    const taskId = parseInput(taskIdSchema, request.labels.taskId, "taskId");
    const task = this.tasks.get(taskId);
    if (!task) throw notFound(`Thing registration task ${taskId} does not exist.`);
    return task;
  }

  private async run(context: EmulatorContext, task: TaskRecord, input: Buffer): Promise<void> {
    const text = input.toString("utf8");
    const lines: Array<{ lineNumber: number; offset: number; text: string }> = [];
    let offset = 0;
    for (const [lineNumber, line] of text.split("\n").entries()) {
      if (line.trim() !== "") lines.push({ lineNumber, offset, text: line });
      offset += Buffer.byteLength(line, "utf8") + 1;
    }
    const pending: Record<ReportType, string[]> = { RESULTS: [], ERRORS: [] };
    const flush = async (type: ReportType, force: boolean) => {
      while (pending[type].length >= REPORT_LINES_PER_OBJECT || (force && pending[type].length > 0)) {
        const chunk = pending[type].splice(0, REPORT_LINES_PER_OBJECT);
        // Reports name certificates: those must be on disk before a report can be read.
        await context.durable();
        const key = `thing-registration-tasks/${task.taskId}/${type.toLowerCase()}-${String(task.reports[type].length).padStart(5, "0")}.json`;
        this.s3.putObject(
          task.inputFileBucket,
          key,
          Buffer.from(`${chunk.join("\n")}\n`),
          "application/json",
        );
        task.reports[type].push(key);
      }
    };
    let processed = 0;
    for (const line of lines) {
      if (this.cancel.has(task.taskId)) break;
      const outcome = await this.registerLine(context, task.templateBody, line.text);
      if ("response" in outcome) {
        task.successCount += 1;
        pending.RESULTS.push(
          JSON.stringify({ lineNumber: line.lineNumber, offset: line.offset, response: outcome.response }),
        );
      } else {
        task.failureCount += 1;
        pending.ERRORS.push(JSON.stringify({ lineNumber: line.lineNumber, offset: line.offset, ...outcome }));
      }
      processed += 1;
      if (processed % BATCH === 0) {
        task.percentageProgress = Math.floor((processed * 100) / lines.length);
        task.lastModifiedDate = context.now();
        await flush("RESULTS", false);
        await flush("ERRORS", false);
        this.save();
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    await flush("RESULTS", true);
    await flush("ERRORS", true);
    await context.durable();
    const cancelled = this.cancel.delete(task.taskId);
    task.status = cancelled ? "Cancelled" : "Completed";
    task.percentageProgress = lines.length === 0 ? 100 : Math.floor((processed * 100) / lines.length);
    task.lastModifiedDate = context.now();
    this.save();
    context.logger.info("iot emulator: registration task done", {
      taskId: task.taskId,
      status: task.status,
      successCount: task.successCount,
      failureCount: task.failureCount,
    });
  }

  private async registerLine(
    context: EmulatorContext,
    templateBody: string,
    text: string,
  ): Promise<
    | { response: { CertificatePem?: string; ResourceArns: Record<string, string> } }
    | { errorCode: string; errorMessage: string }
  > {
    let parameters: Record<string, string>;
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error();
      parameters = {};
      for (const [name, value] of Object.entries(parsed)) {
        if (typeof value !== "string") throw new Error();
        parameters[name] = value;
      }
    } catch {
      return {
        errorCode: "InvalidRequestException",
        errorMessage: "The line is not a JSON object of string parameter values.",
      };
    }
    try {
      const result = await runRegisterThing(context, templateBody, parameters);
      return {
        response: {
          ...(result.certificatePem ? { CertificatePem: result.certificatePem } : {}),
          ResourceArns: result.resourceArns,
        },
      };
    } catch (error) {
      if (error instanceof IotServiceError)
        return { errorCode: error.errorType, errorMessage: error.message };
      throw error;
    }
  }

  private save(): void {
    if (!this.file) return;
    const temporary = `${this.file}.${process.pid}.tmp`;
    writeFileSync(temporary, JSON.stringify([...this.tasks.values()]), { mode: 0o600 });
    renameSync(temporary, this.file);
  }
}

/** A page of `items` for maxResults (1-250) / nextToken (an opaque offset). */
function pageOf(items: string[], query: URLSearchParams): { items: string[]; nextToken?: string } {
  const max = queryInteger(query, "maxResults", 1, 250) ?? 250;
  const token = query.get("nextToken");
  let start = 0;
  if (token) {
    start = Number(Buffer.from(token, "base64url").toString("utf8"));
    if (!Number.isInteger(start) || start < 0 || start > items.length)
      throw invalidRequest("Invalid nextToken.");
  }
  const end = start + max;
  return {
    items: items.slice(start, end),
    ...(end < items.length ? { nextToken: Buffer.from(String(end)).toString("base64url") } : {}),
  };
}

function manager(context: EmulatorContext): RegistrationTasks {
  const tasks = managers.get(context.state);
  if (!tasks) {
    throw invalidRequest(
      "This emulator has no S3 connected: bulk registration runs in the local stack (npm start).",
    );
  }
  return tasks;
}

/** The bulk registration routes. */
export const registrationTaskRoutes: Route[] = [
  {
    operation: "StartThingRegistrationTask",
    method: "POST",
    path: "/thing-registration-tasks",
    handler: (context, request) => manager(context).start(context, request),
  },
  {
    operation: "ListThingRegistrationTasks",
    method: "GET",
    path: "/thing-registration-tasks",
    handler: (context, request) => manager(context).list(request),
  },
  {
    operation: "DescribeThingRegistrationTask",
    method: "GET",
    path: "/thing-registration-tasks/{taskId}",
    handler: (context, request) => manager(context).describe(request),
  },
  {
    operation: "ListThingRegistrationTaskReports",
    method: "GET",
    path: "/thing-registration-tasks/{taskId}/reports",
    handler: (context, request) => manager(context).reports(request),
  },
  {
    operation: "StopThingRegistrationTask",
    method: "PUT",
    path: "/thing-registration-tasks/{taskId}/cancel",
    handler: (context, request) => manager(context).stop(request),
  },
];
