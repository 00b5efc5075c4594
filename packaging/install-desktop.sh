#!/usr/bin/env sh
# Add VertebroPlan to the current user's application menu (or remove it: --uninstall):
# a `vertebroplan` link in ~/.local/bin, the desktop entry and the icon (XDG folders).
#
# Run it from the bundle folder (dist/vertebroplan/install-desktop.sh, copied there by
# packaging/build.sh) or from packaging/ after `make package`; the menu entry starts the
# bundle where it lies, so move the bundle first, then install.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
if [ -x "$here/vertebroplan" ] && [ -d "$here/_internal" ]; then
  bundle=$here
elif [ -x "$here/../dist/vertebroplan/vertebroplan" ]; then
  bundle=$(cd "$here/../dist/vertebroplan" && pwd)
else
  echo "install-desktop.sh: no VertebroPlan bundle next to $here: run \`make package\` first" >&2
  exit 1
fi
source_dir=$here
[ -f "$source_dir/vertebroplan.desktop" ] || source_dir=$bundle

data=${XDG_DATA_HOME:-$HOME/.local/share}
bin=$HOME/.local/bin
desktop=$data/applications/vertebroplan.desktop
png=$data/icons/hicolor/256x256/apps/vertebroplan.png
svg=$data/icons/hicolor/scalable/apps/vertebroplan.svg

refresh() {
  command -v update-desktop-database >/dev/null 2>&1 \
    && update-desktop-database -q "$data/applications" || true
  command -v gtk-update-icon-cache >/dev/null 2>&1 \
    && gtk-update-icon-cache -q -t "$data/icons/hicolor" || true
}

if [ "${1:-}" = "--uninstall" ]; then
  rm -f "$desktop" "$png" "$svg"
  if [ -L "$bin/vertebroplan" ]; then rm -f "$bin/vertebroplan"; fi
  refresh
  echo "VertebroPlan removed from the menu."
  exit 0
fi

mkdir -p "$bin" "$(dirname "$desktop")" "$(dirname "$png")" "$(dirname "$svg")"
ln -sfn "$bundle/vertebroplan" "$bin/vertebroplan"
# Exec is quoted (the path may hold spaces); TryExec is a plain path
sed -e "s|^Exec=vertebroplan|Exec=\"$bundle/vertebroplan\"|" \
    -e "s|^TryExec=.*|TryExec=$bundle/vertebroplan|" \
    "$source_dir/vertebroplan.desktop" > "$desktop"
icons=$bundle
[ -f "$icons/vertebroplan.png" ] || icons=$here/../resources
cp "$icons/vertebroplan.png" "$png"
cp "$icons/vertebroplan.svg" "$svg"
refresh
echo "VertebroPlan added to the menu ($desktop); command: $bin/vertebroplan"
