// Attention for new messages: a short chime and the unread count in the tab's title. The chime,
// console/notify.wav (1.7 KB), is two tones (880 Hz, 1320 Hz; 0.2 s) as 8 kHz 8-bit mono PCM.
// Browsers play sound only after a user gesture on the page; before that the chime is silent (the
// title still tells).

const baseTitle = '客服工作台';
const sound = new Audio('notify.wav');
sound.preload = 'auto';

// Plays the chime; counts plays on <body data-chimes> (what the browser test checks).
export function chime() {
  document.body.dataset.chimes = String(Number(document.body.dataset.chimes || 0) + 1);
  sound.currentTime = 0;
  sound.play().catch(() => {});
}

export function setTitleBadge(unread) {
  document.title = unread > 0 ? `(${unread > 99 ? '99+' : unread}) ${baseTitle}` : baseTitle;
}
