import { NotFoundError, ValidationError } from "#core/errors.ts";
import type { LoadedTemplate, TemplateSource } from "#core/vending/ports.ts";

/**
 * TemplateSource over a loader of template bodies by name (templates/catalog.ts in every
 * runtime). Parsed once per name; `pick` keeps only declared parameters.
 */
export class CatalogTemplateSource implements TemplateSource {
  private readonly loaded = new Map<string, LoadedTemplate>();

  constructor(private readonly loadBody: (name: string) => string | undefined) {}

  async load(name: string): Promise<LoadedTemplate> {
    const cached = this.loaded.get(name);
    if (cached) return cached;
    const body = this.loadBody(name);
    if (body === undefined) throw new NotFoundError(`No provisioning template named ${name}.`);
    let declared: Set<string>;
    try {
      declared = new Set(Object.keys((JSON.parse(body) as { Parameters?: object }).Parameters ?? {}));
    } catch {
      throw new ValidationError(`The provisioning template ${name} is not valid JSON.`);
    }
    const template: LoadedTemplate = {
      name,
      body,
      pick: (parameters) =>
        Object.fromEntries(Object.entries(parameters).filter(([key]) => declared.has(key))),
    };
    this.loaded.set(name, template);
    return template;
  }
}
