/**
 * The phone app's calls to the binding API (HTTPS JSON, `Authorization: Bearer <ID token>`), as the
 * binding contract of issue 11 defines them. Errors come back as `{error: {code, message}}`.
 */

export type Binding = { productKey: string; deviceName: string; userId: string; boundAt: string };
export type BoundDevice = { productKey: string; deviceName: string; boundAt: string };
export type TokenStatus =
  | { status: "pending"; expiresAt?: string | number }
  | { status: "bound"; binding: Binding };

export class PhoneApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Seconds, from a Retry-After header (429). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = "PhoneApiError";
  }
}

export class PhoneApi {
  constructor(
    private readonly baseUrl: string,
    private readonly idToken: string,
    private readonly timeoutMs = 10_000,
  ) {}

  /** POST /v1/bindings: 201 new binding, 200 the same user's retry. */
  async bind(input: { productKey: string; deviceName: string; token: string }): Promise<{
    created: boolean;
    binding: Binding;
  }> {
    const { status, body } = await this.call("POST", "/v1/bindings", input);
    return { created: status === 201, binding: (body as { binding: Binding }).binding };
  }

  /** POST /v1/binding-tokens: register a phone-made token (202 pending, 201 already bound). */
  async registerToken(token: string): Promise<TokenStatus> {
    const { body } = await this.call("POST", "/v1/binding-tokens", { token });
    return body as TokenStatus;
  }

  /** POST /v1/binding-tokens/status (the token stays out of the URL). */
  async tokenStatus(token: string): Promise<TokenStatus> {
    const { body } = await this.call("POST", "/v1/binding-tokens/status", { token });
    return body as TokenStatus;
  }

  /** GET /v1/devices, every page. */
  async devices(): Promise<BoundDevice[]> {
    const devices: BoundDevice[] = [];
    let next: string | undefined;
    do {
      const path = next ? `/v1/devices?nextToken=${encodeURIComponent(next)}` : "/v1/devices";
      const { body } = await this.call("GET", path);
      const page = body as { devices?: BoundDevice[]; nextToken?: string };
      devices.push(...(page.devices ?? []));
      next = page.nextToken;
    } while (next);
    return devices;
  }

  /** DELETE /v1/bindings/{productKey}/{deviceName}: 204, also when it was not bound. */
  async unbind(productKey: string, deviceName: string): Promise<void> {
    await this.call(
      "DELETE",
      `/v1/bindings/${encodeURIComponent(productKey)}/${encodeURIComponent(deviceName)}`,
    );
  }

  private async call(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: unknown }> {
    const url = new URL(
      path.replace(/^\//, ""),
      this.baseUrl.endsWith("/") ? this.baseUrl : `${this.baseUrl}/`,
    );
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${this.idToken}`,
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw new PhoneApiError(
        0,
        "UNREACHABLE",
        `cannot reach ${url.origin}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === "" ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (response.status >= 400) {
      const error = (parsed as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
      const retryAfter = Number(response.headers.get("retry-after") ?? Number.NaN);
      const message =
        typeof error?.message === "string" ? error.message : text.slice(0, 200) || response.statusText;
      throw new PhoneApiError(
        response.status,
        typeof error?.code === "string" ? error.code : `HTTP_${response.status}`,
        `${method} ${url.pathname}: HTTP ${response.status}${typeof error?.code === "string" ? ` ${error.code}` : ""}: ${message}`,
        Number.isFinite(retryAfter) ? retryAfter : undefined,
      );
    }
    if (parsed === undefined && text !== "") {
      throw new PhoneApiError(
        response.status,
        "BAD_ANSWER",
        `${method} ${url.pathname} answered something that is not JSON`,
      );
    }
    return { status: response.status, body: parsed };
  }
}
