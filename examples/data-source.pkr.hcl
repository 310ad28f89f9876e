# The outscale-omi data source: the newest Debian image of the catalogue,
# read at plan time (`<=` in the plan), as the source of a bsu build; its
# outputs (id, name, creation_date, owner, owner_name, root_device_name)
# fill the fields rendered once the source is known.
data "outscale-omi" "debian" {
  filters = {
    image-name       = "Debian-12-*"
    root-device-type = "bsu"
  }
  owners      = ["Outscale"]
  most_recent = true
}

source "outscale-bsu" "from-data" {
  custom_endpoint_oapi = "sim://state/sim"
  vm_type              = "tinav5.c2r4p2"
  source_omi           = data.outscale-omi.debian.id
  communicator         = "none"
  omi_name             = "from-data-source"
  omi_description      = "Built by osci from ${data.outscale-omi.debian.name} (${data.outscale-omi.debian.owner_name})"
  tags = {
    source         = data.outscale-omi.debian.id
    source_created = data.outscale-omi.debian.creation_date
  }
}

build {
  sources = ["source.outscale-bsu.from-data"]
}
