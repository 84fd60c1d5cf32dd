import { describe, expect, it } from 'vitest';
import { SCAN_KNOWN_ANSWERS, scanKnownAnswers } from './native-scan.js';
import { scanJs } from './scan-js.js';

describe('the native scanner check', () => {
  it('its known answers are the JavaScript scanner’s cuts', () => {
    expect(scanKnownAnswers(scanJs)).toEqual(SCAN_KNOWN_ANSWERS);
  });
});
