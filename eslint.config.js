// Flat config: typescript-eslint recommended rules, plus the security gates from SECURITY.md.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'data/', 'bench/.results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-properties': [
        'error',
        // SECURITY.md class L: tokens, ids and secrets come from the CSPRNG only.
        { object: 'Math', property: 'random', message: 'Use node:crypto (randomBytes / randomUUID / randomInt).' },
      ],
    },
  },
  {
    // Tests read parsed JSON responses loosely; production code may not.
    files: ['**/*.test.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // SECURITY.md class C: no raw SQL built from input. sql.raw is banned outside the storage layer.
    files: ['src/**/*.ts'],
    ignores: ['src/storage/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: "MemberExpression[object.name='sql'][property.name='raw']", message: 'sql.raw is only allowed in src/storage.' },
      ],
    },
  },
);
