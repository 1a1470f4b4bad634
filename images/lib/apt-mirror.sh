# Shared by the image recipes: find the apt mirror this machine is configured with.
#   . images/lib/apt-mirror.sh; find_mirror SUITE   -> prints "URI<TAB>SIGNED-BY" (first match)
# Reads /etc/apt/sources.list{,.d/*.list} (one-line style) and .d/*.sources (deb822).
find_mirror() {
  local f SUITE=${1:-bookworm}
  shopt -s nullglob
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    case "$f" in
      *.sources)
        # deb822: paragraphs separated by blank lines
        awk -v suite="$SUITE" '
          function flush() {
            if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && enabled != "no" && uris != "") {
              split(uris, u, " "); print u[1] "\t" signed; found = 1; exit
            }
            types = suites = uris = signed = ""; enabled = ""
          }
          /^[ \t]*#/ { next }
          /^[ \t]*$/ { flush(); next }
          { key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^[ \t]+/, "")
            if (key == "types") types = $0; else if (key == "uris") uris = $0
            else if (key == "suites") suites = $0; else if (key == "signed-by") signed = $0
            else if (key == "enabled") enabled = tolower($0) }
          END { if (!found) flush() }' "$f" ;;
      *)
        # one-line style: deb [opts] URI suite components...
        awk -v suite="$SUITE" '
          $1 == "deb" {
            i = 2; signed = ""
            if ($2 ~ /^\[/) { while (i <= NF) { if ($i ~ /^signed-by=/) { signed = $i; sub(/^signed-by=/, "", signed); sub(/\]$/, "", signed) }
                                                 if ($i ~ /\]$/) { i++; break } i++ } }
            if ($(i + 1) == suite) { print $i "\t" signed; exit }
          }' "$f" ;;
    esac
  done | head -n1
}
