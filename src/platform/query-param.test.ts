import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { queryParam } from './query-param.ts';

describe('queryParam', () => {
  it('reads a parameter exactly as URLSearchParams.get does', () => {
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJlLXdpdGgtXy1hbmQtZGFzaGVz';
    const queries = [
      `token=${jwt}`,
      `a=1&token=${jwt}&b=2`,
      `token=${jwt}&token=second`,
      'token=',
      'token',
      'token&x=1',
      'tokens=1',
      'xtoken=1',
      'a=1&tokenx=2',
      '',
      '&&token=v&',
      'token=a+b',
      'token=a%2Bb%20c',
      'token=%E2%9C%93',
      'token=%zz',
      'tok%65n=escaped-name',
      'tok%65n=first&token=second',
      'x=%41&token=plain',
      'token=plain&x=%41',
      'token=v&y=a+b',
      'a=b+c',
      '=token&token=v',
      'token=v=w',
      'token==',
    ];
    for (const q of queries) assert.equal(queryParam(q, 'token'), new URLSearchParams(q).get('token'), JSON.stringify(q));
  });

  it('returns the plain value without copying the rest of the query', () => {
    assert.equal(queryParam('since=5&token=abc.def-ghi_jkl', 'token'), 'abc.def-ghi_jkl');
    assert.equal(queryParam('since=5', 'token'), null);
  });
});
