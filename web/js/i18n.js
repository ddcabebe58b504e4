// User-facing strings in English and Simplified Chinese. The language comes from
// ?lang=, then the browser's preference; every page has a switch.
const STRINGS = {
  en: {
    title: "fixline remote assist",
    lang_switch: "中文",
    join_title: "Video help for your tool",
    join_intro: "An expert will look at the problem with you through your camera.",
    join_start: "Start video call",
    join_camera_denied: "The camera or microphone was not allowed. Allow them in the browser settings and try again.",
    join_invalid: "This link is not valid any more. Ask for a new one.",
    queue_position: "You are number {position} in the queue. Estimated wait: {minutes} min.",
    expert_joined: "{name} joined. Point your camera at the problem.",
    session_ended: "The session has ended ({outcome}). Thank you!",
    chat_placeholder: "Type a message",
    send: "Send",
    you: "You",
    expert: "Expert",
    customer: "Customer",
    login_title: "Expert console",
    username: "User name",
    password: "Password",
    login: "Log in",
    login_failed: "Login failed: {detail}",
    queue_title: "Waiting customers",
    queue_empty: "Nobody is waiting.",
    accept: "Accept",
    diagnosis_title: "Live diagnosis",
    diagnosis_unknown: "Not a known defect",
    snapshot: "Snapshot",
    end_resolved: "Resolved",
    end_escalate: "Needs a technician",
    end_unreachable: "Customer unreachable",
    connecting: "Connecting…",
    torch_unsupported: "The expert asked for the torch, but this camera has none.",
    survey_title: "How did we do?",
    survey_question: "How satisfied are you with the repair?",
    survey_comment: "Comment (optional)",
    survey_complaint: "The problem is not solved: please reopen my case",
    survey_submit: "Send",
    survey_thanks: "Thank you for your feedback!",
    survey_reopened: "Thank you. Your case has been reopened and we will contact you.",
    survey_expired: "This survey link has expired.",
  },
  "zh-CN": {
    title: "fixline 远程协助",
    lang_switch: "English",
    join_title: "工具视频协助",
    join_intro: "专家将通过您的摄像头和您一起查看问题。",
    join_start: "开始视频通话",
    join_camera_denied: "未允许使用摄像头或麦克风。请在浏览器设置中允许后重试。",
    join_invalid: "此链接已失效，请索取新的链接。",
    queue_position: "您在队列中排第 {position} 位，预计等待 {minutes} 分钟。",
    expert_joined: "{name} 已加入。请将摄像头对准问题部位。",
    session_ended: "会话已结束（{outcome}）。谢谢！",
    chat_placeholder: "输入消息",
    send: "发送",
    you: "您",
    expert: "专家",
    customer: "客户",
    login_title: "专家控制台",
    username: "用户名",
    password: "密码",
    login: "登录",
    login_failed: "登录失败：{detail}",
    queue_title: "等待中的客户",
    queue_empty: "当前无人等待。",
    accept: "接听",
    diagnosis_title: "实时诊断",
    diagnosis_unknown: "非已知缺陷",
    snapshot: "截图",
    end_resolved: "已解决",
    end_escalate: "需要技术员上门",
    end_unreachable: "无法联系客户",
    connecting: "正在连接…",
    torch_unsupported: "专家请求打开闪光灯，但此摄像头不支持。",
    survey_title: "服务评价",
    survey_question: "您对本次维修满意吗？",
    survey_comment: "意见（选填）",
    survey_complaint: "问题没有解决：请重新处理我的工单",
    survey_submit: "提交",
    survey_thanks: "感谢您的反馈！",
    survey_reopened: "谢谢。您的工单已重新打开，我们会尽快联系您。",
    survey_expired: "此评价链接已过期。",
  },
};

export function language() {
  const q = new URLSearchParams(location.search).get("lang");
  if (q && STRINGS[q]) return q;
  const stored = localStorage.getItem("fixline.lang");
  if (stored && STRINGS[stored]) return stored;
  return (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh-CN" : "en";
}

export function t(key, vars = {}) {
  const s = STRINGS[language()][key] ?? STRINGS.en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ""));
}

/// Fills every [data-i18n] element and wires the language switch.
export function translatePage() {
  document.documentElement.lang = language();
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  const sw = document.getElementById("lang");
  if (sw) {
    sw.textContent = t("lang_switch");
    sw.onclick = () => {
      localStorage.setItem("fixline.lang", language() === "en" ? "zh-CN" : "en");
      const u = new URL(location.href);
      u.searchParams.delete("lang");
      location.replace(u.toString());
    };
  }
}
