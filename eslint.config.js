// Lint: typescript-eslint's recommended rules plus the type-aware ones that catch real bugs here
// (a promise nobody awaits, a promise where a callback is expected, a switch that misses a case),
// and type-only imports kept type-only. Prettier owns the format (checked separately).
// Workflow code must stay deterministic, so it may import no Node built-ins (the rule the
// Temporal samples use); the layers' dependency direction (workflows <- activities <- src,
// api and worker apart, the client SDK on nothing server-side) is enforced the same way.
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

const nodeBuiltins = builtinModules.flatMap((name) => [name, `node:${name}`]);
const noTestImports = { group: ['**/test/*', '**/test/**'], message: 'nothing outside test/ imports test/' };
const restrict = (...patterns) => ['error', { patterns: [...patterns, noTestImports] }];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench-results/**', 'data/**', '**/*.js', '**/*.mjs', '**/*.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's describe/it return promises the runner itself tracks.
        {
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'],
            },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      // A `default` branch is a decision too; a switch without one must name every case.
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      // A handler created before the object it calls back into is read before it is assigned.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({ name, message: 'workflow code is deterministic: no Node built-ins, no I/O' })),
          patterns: [
            {
              group: ['../activities/*', '../src/*'],
              message: 'workflows import activities as types only, and nothing from src/',
              allowTypeImports: true,
            },
            noTestImports,
          ],
        },
      ],
    },
  },
  { files: ['src/**/*.ts', 'tools/**/*.ts', 'examples/**/*.ts'], rules: { 'no-restricted-imports': restrict() } },
  // Tests read JSON answers and assert on their shape: the bodies are `any` on purpose.
  { files: ['test/**/*.ts'], rules: { '@typescript-eslint/no-explicit-any': 'off' } },
  {
    files: ['activities/**/*.ts'],
    rules: { 'no-restricted-imports': restrict({ group: ['../src/*'], message: 'activities import nothing from src/' }) },
  },
  {
    files: ['src/api/**/*.ts'],
    rules: {
      'no-restricted-imports': restrict({
        group: ['**/worker/*', '**/dev/*', '**/test/*'],
        message: 'the API and the worker never import each other',
      }),
    },
  },
  {
    files: ['src/worker/**/*.ts'],
    rules: {
      'no-restricted-imports': restrict({
        group: ['**/api/*', '**/dev/*', '**/test/*'],
        message: 'the API and the worker never import each other',
      }),
    },
  },
  {
    files: ['src/client/**/*.ts', 'src/cli/**/*.ts'],
    rules: {
      'no-restricted-imports': restrict(
        {
          group: [
            '**/api/*',
            '**/worker/*',
            '**/dev/*',
            '**/shared/*',
            '**/activities/*',
            '**/workflows/*',
            '!**/workflows/task-status.js',
          ],
          message: 'the client SDK and the CLI load nothing server-side',
          allowTypeImports: true,
        },
        {
          group: ['fastify', '@temporalio/*', 'undici', 'pino'],
          message: 'the client SDK installs light: no server packages at run time',
          allowTypeImports: true,
        },
      ),
    },
  },
);
