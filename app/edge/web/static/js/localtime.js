// Times are listed in the business's timezone. When this device is set to another one, add
// each time in the device's timezone next to it, and say so once.
const note = document.querySelector(".tz-note[data-business-tz]");

function localTimes() {
  if (!note) return;
  const business = note.dataset.businessTz;
  const yours = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!yours || yours === business) return;
  const format = new Intl.DateTimeFormat(document.documentElement.lang, {
    hour: "numeric",
    minute: "2-digit",
    timeZone: yours,
  });
  const label = note.dataset.yourTime;
  for (const time of document.querySelectorAll(".times time[datetime]")) {
    const at = new Date(time.getAttribute("datetime"));
    if (Number.isNaN(at.getTime())) continue;
    const extra = document.createElement("span");
    extra.className = "yours";
    extra.textContent = ` (${format.format(at)} ${label})`;
    time.after(extra);
  }
  const said = document.createElement("span");
  said.className = "yours-note";
  said.textContent = " " + note.dataset.differs.replace("ZONE", yours);
  note.append(said);
}

localTimes();
