/**
 * The CDK app entry (cdk.json: `npx tsx lib/app.ts`). `npx cdk synth` works offline and without
 * credentials; pass settings with `-c key=value` (lib/config.ts lists them).
 */
import { createOnrampApp } from "./onramp-app.ts";

createOnrampApp().app.synth();
