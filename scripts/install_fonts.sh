#!/usr/bin/env bash
# Installs the Debian font packages rendered into the "Alphabet" data set (tasks/alphabet.py).
# Idempotent: apt is skipped when every package is already installed (dpkg status).
# Needs root (or sudo) and Debian's package archive; usage: bash scripts/install_fonts.sh
set -euo pipefail

PACKAGES=(
  fonts-dejavu-core fonts-dejavu-extra fonts-liberation fonts-liberation2 fonts-freefont-ttf
  fonts-texgyre fonts-cmu fonts-croscore fonts-crosextra-carlito fonts-crosextra-caladea
  fonts-roboto-unhinted fonts-roboto-slab fonts-open-sans fonts-lato fonts-linuxlibertine
  fonts-ebgaramond fonts-cantarell fonts-comfortaa fonts-inconsolata fonts-firacode fonts-go
  fonts-sil-charis fonts-sil-andika fonts-sil-doulos fonts-cabin fonts-quicksand
  fonts-yanone-kaffeesatz fonts-dkg-handwriting fonts-humor-sans fonts-comic-neue
  fonts-adf-accanthis fonts-adf-baskervald fonts-adf-berenis fonts-adf-gillius
  fonts-adf-ikarius fonts-adf-irianis fonts-adf-libris fonts-adf-mekanus fonts-adf-oldania
  fonts-adf-romande fonts-adf-solothurn fonts-adf-switzera fonts-adf-tribun
  fonts-adf-universalis fonts-adf-verana fonts-beteckna fonts-blankenburg fonts-dustin
  fonts-f500 fonts-fanwood fonts-goudybookletter fonts-isabella fonts-jura fonts-kristi
  fonts-league-spartan fonts-leckerli-one fonts-linex fonts-lobster fonts-lobstertwo
  fonts-oldstandard fonts-paratype fonts-prociono fonts-radisnoir fonts-rufscript
  fonts-tomsontalks fonts-vollkorn fonts-stix fonts-anonymous-pro fonts-averia-gwf fonts-b612
  fonts-cardo fonts-clear-sans fonts-courier-prime fonts-dancingscript fonts-dosis
  fonts-jetbrains-mono fonts-karla fonts-manrope fonts-mononoki fonts-ocr-a fonts-ocr-b
  fonts-opendin fonts-opendyslexic fonts-play fonts-quattrocento fonts-sora fonts-tuffy
  fonts-yrsa-rasa fonts-inter fonts-oxygen fonts-century-catalogue fonts-georgewilliams
  fonts-gotico-antiqua fonts-levien-museum fonts-levien-typoscript fonts-lindenhill
  fonts-cherrybomb fonts-engadget fonts-eurofurence fonts-fantasque-sans fonts-femkeklaver
  fonts-gamaliel fonts-hermit fonts-junction fonts-klaudia-berenika fonts-lemonada
  fonts-le-murmure fonts-league-mono fonts-national-park fonts-okolaks fonts-routed-gothic
  fonts-staypuft fonts-summersby fonts-uralic fonts-essays1743 fonts-arapey fonts-allerta
  fonts-apropal fonts-bajaderka fonts-campania fonts-ecolier-court fonts-oflb-euterpe
  fonts-kaushanscript fonts-karmilla fonts-gfs-didot fonts-gfs-baskerville
  fonts-gfs-neohellenic fonts-sil-gentium-basic fonts-noto-mono fonts-3270 fonts-agave
  fonts-monofur fonts-tiresias fonts-ubuntu-title fonts-mph-2b-damase fonts-cabinsketch
  fonts-breip)

installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null \
  | awk '$NF == "installed" {print $1}' || true)
missing=()
for p in "${PACKAGES[@]}"; do
  if ! grep -qx "$p" <<<"$installed"; then missing+=("$p"); fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install_fonts: all ${#PACKAGES[@]} font packages already installed"
  exit 0
fi
echo "install_fonts: installing ${#missing[@]} of ${#PACKAGES[@]} font packages"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install_fonts: done"
