// The token prompt and the confirmation dialog, both native <dialog>s (focus moves in and
// back, Escape closes the confirmation).

import { $ } from './dom.js';

/** Asks for the token; resolves with it once submitted. The dialog cannot be dismissed. */
export function promptToken(reason) {
  const dialog = $('#token-dialog');
  const input = $('#token-input');
  const error = $('#token-error');
  error.textContent = reason || '';
  input.value = '';
  return new Promise((resolve) => {
    const form = $('#token-form');
    const onCancel = (e) => e.preventDefault();
    const onSubmit = (e) => {
      e.preventDefault();
      const token = input.value.trim();
      if (!token) { error.textContent = 'Enter the token.'; return; }
      form.removeEventListener('submit', onSubmit);
      dialog.removeEventListener('cancel', onCancel);
      dialog.close();
      resolve(token);
    };
    form.addEventListener('submit', onSubmit);
    dialog.addEventListener('cancel', onCancel);
    if (!dialog.open) dialog.showModal();
    input.focus();
  });
}

/** Resolves true when the person confirms. */
export function confirmAction({ title, text, confirm }) {
  const dialog = $('#confirm-dialog');
  $('#confirm-title').textContent = title;
  $('#confirm-text').textContent = text;
  $('#confirm-yes').textContent = confirm;
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'yes'), { once: true });
    dialog.showModal();
    $('#confirm-no').focus();
  });
}
