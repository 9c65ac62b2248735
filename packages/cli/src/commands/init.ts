import { Store } from '@tidemark/core';
import type { Command } from 'commander';
import { action, type CommonOptions, withCommonOptions } from '../command-kit.js';

export function registerInit(program: Command): void {
  withCommonOptions(program.command('init'))
    .description('create (or open and migrate) a local store')
    .action(
      action('init', async (output, options: CommonOptions) => {
        const store = Store.open({ dir: options.dir, create: true });
        const data = { dir: store.dir, storeId: store.storeId };
        await store.close();
        output.result(data, () => `store ready at ${data.dir}`);
        return 0;
      }),
    );
}
