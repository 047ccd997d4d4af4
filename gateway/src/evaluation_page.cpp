// The patient's evaluation page (/eval/<token>): plain HTML, CSS and JavaScript in Simplified
// Chinese for a phone's WeChat browser. It reads the token from its own URL and talks to
// /api/eval/<token>; nothing else is loaded (the response's CSP allows nothing else).
#include <string_view>

namespace scrm::gateway {

std::string_view evaluation_page_html() {
    return R"html(<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>服务评价</title>
<style>
body{margin:0;font-family:-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;background:#f5f6f8;color:#222}
main{max-width:560px;margin:0 auto;padding:16px}
h1{font-size:20px;margin:8px 0 4px}
p.sub{color:#666;margin:0 0 16px;font-size:14px}
.item{background:#fff;border-radius:10px;padding:12px 14px;margin-bottom:10px}
.item .name{font-size:16px;margin-bottom:8px}
.choices{display:flex;gap:8px}
.choices button{flex:1;padding:10px 0;font-size:15px;border:1px solid #ccd;border-radius:8px;background:#fff}
.choices button.on[data-r=good]{background:#2e9d5b;color:#fff;border-color:#2e9d5b}
.choices button.on[data-r=average]{background:#e0a526;color:#fff;border-color:#e0a526}
.choices button.on[data-r=poor]{background:#d9534f;color:#fff;border-color:#d9534f}
textarea{width:100%;box-sizing:border-box;min-height:90px;font-size:15px;padding:10px;border:1px solid #ccd;border-radius:8px}
#submit{width:100%;padding:14px;font-size:17px;border:0;border-radius:10px;background:#1677ff;color:#fff;margin-top:12px}
#submit:disabled{background:#9bbcf0}
#msg{margin-top:12px;font-size:15px}
.error{color:#c0392b}.ok{color:#2e7d32}
.reply{background:#eef6ff;border-radius:10px;padding:12px;margin-top:12px;white-space:pre-wrap}
</style>
</head>
<body>
<main>
<h1 id="title">服务评价</h1>
<p class="sub" id="sub">正在加载…</p>
<form id="form" hidden>
<div id="items"></div>
<div class="item"><div class="name">留言（选填）</div>
<textarea id="comment" maxlength="500" placeholder="请写下您的意见或建议"></textarea></div>
<button id="submit" type="submit">提交评价</button>
</form>
<div id="done" hidden></div>
<div id="msg" role="status"></div>
</main>
<script>
(function () {
  var token = location.pathname.split('/').pop();
  var api = '/api/eval/' + encodeURIComponent(token);
  var labels = {good: '好', average: '中', poor: '差'};
  var chosen = {};
  var el = function (id) { return document.getElementById(id); };
  function say(text, cls) { var m = el('msg'); m.textContent = text; m.className = cls || ''; }
  function showDone(d) {
    el('form').hidden = true;
    var box = el('done'); box.hidden = false; box.textContent = '';
    var p = document.createElement('p'); p.className = 'ok';
    p.textContent = '感谢您的评价！'; box.appendChild(p);
    (d.attributes || []).forEach(function (a) {
      if (!d.ratings || !d.ratings[a]) return;
      var row = document.createElement('div'); row.className = 'item';
      row.textContent = a + '：' + labels[d.ratings[a]]; box.appendChild(row);
    });
    if (d.comment) { var c = document.createElement('div'); c.className = 'item'; c.textContent = '留言：' + d.comment; box.appendChild(c); }
    if (d.reply) { var r = document.createElement('div'); r.className = 'reply'; r.textContent = '诊所回复：' + d.reply; box.appendChild(r); }
  }
  function render(d) {
    el('title').textContent = d.clinic + ' · 服务评价';
    if (d.state !== 'awaiting') { el('sub').textContent = ''; showDone(d); return; }
    el('sub').textContent = '请为本次就诊的各项服务打分';
    var items = el('items');
    d.attributes.forEach(function (a) {
      var box = document.createElement('div'); box.className = 'item';
      var name = document.createElement('div'); name.className = 'name'; name.textContent = a;
      var ch = document.createElement('div'); ch.className = 'choices';
      ['good', 'average', 'poor'].forEach(function (r) {
        var b = document.createElement('button'); b.type = 'button'; b.dataset.r = r;
        b.textContent = labels[r];
        b.onclick = function () {
          chosen[a] = r;
          Array.prototype.forEach.call(ch.children, function (x) { x.classList.toggle('on', x === b); });
        };
        ch.appendChild(b);
      });
      box.appendChild(name); box.appendChild(ch); items.appendChild(box);
    });
    el('form').hidden = false;
    el('form').onsubmit = function (ev) {
      ev.preventDefault();
      var missing = d.attributes.filter(function (a) { return !chosen[a]; });
      if (missing.length) { say('请为“' + missing[0] + '”选择好、中或差', 'error'); return; }
      el('submit').disabled = true; say('正在提交…');
      fetch(api, {method: 'POST', headers: {'Content-Type': 'application/json'},
                  body: JSON.stringify({ratings: chosen, comment: el('comment').value})})
        .then(function (res) { return res.json().then(function (b) { return {status: res.status, body: b}; }); })
        .then(function (r) {
          if (r.status === 200) { say(''); d.state = 'submitted'; d.ratings = chosen; d.comment = el('comment').value; showDone(d); return; }
          el('submit').disabled = r.status !== 400;
          say(r.body.error || '提交失败，请稍后再试', 'error');
        })
        .catch(function () { el('submit').disabled = false; say('网络异常，请稍后再试', 'error'); });
    };
  }
  fetch(api).then(function (res) {
    return res.json().then(function (b) { return {status: res.status, body: b}; });
  }).then(function (r) {
    if (r.status === 200) { render(r.body); } else { el('sub').textContent = ''; say(r.body.error || '无法打开评价', 'error'); }
  }).catch(function () { el('sub').textContent = ''; say('网络异常，请稍后再试', 'error'); });
})();
</script>
</body>
</html>
)html";
}

}  // namespace scrm::gateway
